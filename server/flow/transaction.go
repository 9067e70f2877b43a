package flow

import (
	"errors"
	"fmt"
	"time"

	"github.com/emiago/sipgo/sip"
)

// TimerF is how long the hub waits for the response to a request it sent.
const TimerF = 32 * time.Second

// sweepsPerTimerF is how often, per Timer F, a flow with requests waiting
// looks for those that waited too long: one timer per flow instead of one
// per request, and a request fails between Timer F and Timer F plus a
// sixteenth of it after it was sent (32 s to 34 s).
const sweepsPerTimerF = 16

// Errors given to response callbacks when no response came.
var (
	ErrTimeout = errors.New("flow: no response within Timer F")
	ErrClosed  = errors.New("flow: connection closed")
)

// Answerer is told the outcome of a request the hub sent: its final
// response, or ErrTimeout, or ErrClosed. A long-lived value (the
// subscription whose NOTIFY it is) rather than a closure per request, so
// that sending a request allocates nothing.
type Answerer interface {
	Answered(res *sip.Response, err error)
}

// AnswerFunc is a function as an Answerer.
type AnswerFunc func(res *sip.Response, err error)

// Answered calls fn.
func (fn AnswerFunc) Answered(res *sip.Response, err error) { fn(res, err) }

// clientTx is one request the hub sent, waiting for its final response.
type clientTx struct {
	a        Answerer
	deadline time.Time
}

// Request sends msg, a request whose top Via carries branch, and tells a
// exactly once its final response, ErrTimeout, or ErrClosed (also when the
// write fails, wrapping its error). a runs on the connection's read
// goroutine, a timer's, or the caller's (a closed flow): it must not block.
func (f *Flow) Request(msg []byte, branch Branch, a Answerer) {
	f.RequestRecycle(msg, nil, branch, a)
}

// RequestRecycle is Request for a message whose memory the caller reuses:
// when the connection is a Recycler, recycle(msg) is called once msg has
// been written; otherwise (or when the send fails) never, and msg is the
// garbage collector's. recycle must not block.
func (f *Flow) RequestRecycle(msg []byte, recycle func([]byte), branch Branch, a Answerer) {
	f.request(msg, recycle, branch, a, false)
}

// RequestHeld is RequestRecycle that may leave msg queued without waking
// the connection's writer: it reports whether it did, and then the caller
// must call Kick once it has queued what it has for this flow, without
// blocking in between. Answers and other requests still wake the writer
// at once (and it then writes the held messages too).
func (f *Flow) RequestHeld(msg []byte, recycle func([]byte), branch Branch, a Answerer) (held bool) {
	return f.request(msg, recycle, branch, a, true)
}

// Kick writes what RequestHeld left queued.
func (f *Flow) Kick() {
	if f.holder != nil {
		f.holder.Kick()
	}
}

func (f *Flow) request(msg []byte, recycle func([]byte), branch Branch, a Answerer, hold bool) (held bool) {
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		a.Answered(nil, ErrClosed)
		return false
	}
	if f.pending == nil {
		f.pending = make(map[Branch]clientTx, 4)
		f.armSweepLocked()
	}
	f.pending[branch] = clientTx{a: a, deadline: time.Now().Add(f.timerF)}
	f.mu.Unlock()
	var err error
	switch {
	case hold && f.holder != nil:
		err = f.holder.SendHeld(msg, recycle)
		held = err == nil
	case recycle != nil && f.recycler != nil:
		err = f.recycler.SendRecycle(msg, recycle)
	default:
		err = f.conn.Send(msg)
	}
	if err != nil {
		// The connection refuses writes only when it is closing (or closes
		// it for a slow consumer): the flow is gone, as for ErrClosed.
		if tx, ok := f.take(branch); ok {
			tx.a.Answered(nil, fmt.Errorf("%w: %w", ErrClosed, err))
		}
	}
	return held
}

// armSweepLocked starts the Timer F sweep, which runs while requests wait.
func (f *Flow) armSweepLocked() {
	d := max(f.timerF/sweepsPerTimerF, time.Millisecond)
	if f.sweeper == nil {
		f.sweeper = time.AfterFunc(d, f.sweep)
	} else {
		f.sweeper.Reset(d)
	}
}

// sweep fails the requests whose Timer F has run out. When none waits, the
// transaction table is dropped (an idle flow keeps no map: maps never
// shrink) and the sweep stops until the next request.
func (f *Flow) sweep() {
	f.mu.Lock()
	if f.closed || f.pending == nil {
		f.mu.Unlock()
		return
	}
	now := time.Now()
	var expired []Answerer
	for b, tx := range f.pending {
		if !now.Before(tx.deadline) {
			delete(f.pending, b)
			expired = append(expired, tx.a)
		}
	}
	if len(f.pending) == 0 {
		f.pending = nil
	} else {
		f.armSweepLocked()
	}
	f.mu.Unlock()
	for _, a := range expired {
		a.Answered(nil, ErrTimeout)
	}
}

func (f *Flow) take(branch Branch) (clientTx, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	tx, ok := f.pending[branch]
	if ok {
		// The emptied map is kept for the next request; the sweep drops
		// it once the flow is idle.
		delete(f.pending, branch)
	}
	return tx, ok
}

// HandleResponse completes the client transaction res belongs to. It reports
// false for a stray response (RFC 3261 §18.1.2: discarded).
func (f *Flow) HandleResponse(res *sip.Response) bool {
	if res.StatusCode < 200 {
		return true // provisional: keep waiting
	}
	via := res.Via()
	if via == nil {
		return false
	}
	b, _ := via.Params.Get("branch")
	branch, ok := ParseBranch(b)
	if !ok {
		return false // not shaped like the hub's: no request of the hub's
	}
	return f.complete(branch, res)
}

// HandleAnswer completes the client transaction of branch with a final
// response of status code, as ScanAnswer found them without a parse. The
// callback gets a shared response carrying only the status code.
func (f *Flow) HandleAnswer(branch Branch, code int) bool {
	return f.complete(branch, answerFor(code))
}

func (f *Flow) complete(branch Branch, res *sip.Response) bool {
	tx, ok := f.take(branch)
	if !ok {
		return false
	}
	tx.a.Answered(res, nil)
	return true
}

// Pending is the number of requests waiting for a response (metrics).
func (f *Flow) Pending() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.pending)
}

var answers = map[int]*sip.Response{200: sip.NewResponse(200, "OK"), 202: sip.NewResponse(202, "Accepted")}

// answerFor is a shared, read-only response carrying only the status code.
func answerFor(code int) *sip.Response {
	if r, ok := answers[code]; ok {
		return r
	}
	return sip.NewResponse(code, "")
}

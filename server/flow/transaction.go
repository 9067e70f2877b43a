package flow

import (
	"errors"
	"fmt"
	"time"

	"github.com/emiago/sipgo/sip"
)

// TimerF is how long the hub waits for the response to a request it sent.
const TimerF = 32 * time.Second

// Errors given to response callbacks when no response came.
var (
	ErrTimeout = errors.New("flow: no response within Timer F")
	ErrClosed  = errors.New("flow: connection closed")
)

// clientTx is one request the hub sent, waiting for its final response.
type clientTx struct {
	fn    func(*sip.Response, error)
	timer *time.Timer
}

// Request sends msg, a request whose top Via carries branch, and calls fn
// exactly once with its final response, ErrTimeout, or ErrClosed (also when
// the write fails, wrapping its error). fn runs on the connection's read
// goroutine or a timer: it must not block.
func (f *Flow) Request(msg []byte, branch string, fn func(*sip.Response, error)) {
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		fn(nil, ErrClosed)
		return
	}
	tx := &clientTx{fn: fn}
	tx.timer = time.AfterFunc(f.timerF, func() {
		if f.take(branch) == tx {
			fn(nil, ErrTimeout)
		}
	})
	if f.pending == nil {
		f.pending = make(map[string]*clientTx, 1)
	}
	f.pending[branch] = tx
	f.mu.Unlock()
	if err := f.conn.Send(msg); err != nil {
		// The connection refuses writes only when it is closing (or closes
		// it for a slow consumer): the flow is gone, as for ErrClosed.
		if f.take(branch) == tx {
			tx.timer.Stop()
			fn(nil, fmt.Errorf("%w: %w", ErrClosed, err))
		}
	}
}

func (f *Flow) take(branch string) *clientTx {
	f.mu.Lock()
	defer f.mu.Unlock()
	tx := f.pending[branch]
	if tx != nil {
		delete(f.pending, branch)
		if len(f.pending) == 0 {
			f.pending = nil // an idle flow keeps no map (maps never shrink)
		}
	}
	return tx
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
	branch, _ := via.Params.Get("branch")
	return f.complete(branch, res)
}

// HandleAnswer completes the client transaction of branch with a final
// response of status code, as ScanAnswer found them without a parse. The
// callback gets a shared response carrying only the status code.
func (f *Flow) HandleAnswer(branch string, code int) bool {
	return f.complete(branch, answerFor(code))
}

func (f *Flow) complete(branch string, res *sip.Response) bool {
	tx := f.take(branch)
	if tx == nil {
		return false
	}
	tx.timer.Stop()
	tx.fn(res, nil)
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

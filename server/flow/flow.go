package flow

import (
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"github.com/emiago/sipgo/sip"
	"github.com/presencehub/presencehub/server/auth"
)

// Conn is what a flow needs of its transport (wsproto.Conn provides it).
type Conn interface {
	Send(msg []byte) error
	Close(code websocket.StatusCode, reason string)
	RemoteIP() string
}

// TimerF is how long the hub waits for the response to a request it sent.
const TimerF = 32 * time.Second

// Errors given to response callbacks when no response came.
var (
	ErrTimeout = errors.New("flow: no response within Timer F")
	ErrClosed  = errors.New("flow: connection closed")
)

var nextID atomic.Uint64

// Flow is one connected client.
type Flow struct {
	id   uint64
	conn Conn

	mu       sync.Mutex
	identity *auth.Identity
	expiry   *time.Timer
	pending  map[string]*clientTx
	closed   bool
	onClose  []func()
	timerF   time.Duration
}

type clientTx struct {
	fn    func(*sip.Response, error)
	timer *time.Timer
}

// New returns the flow of conn, authenticated as id (nil when the upgrade
// carried no token; a later request may bring one).
func New(conn Conn, id *auth.Identity) *Flow {
	f := &Flow{id: nextID.Add(1), conn: conn, pending: make(map[string]*clientTx), timerF: TimerF}
	if id != nil {
		f.SetIdentity(id)
	}
	return f
}

// SetTimerF changes the response timeout of requests sent from now on (tests).
func (f *Flow) SetTimerF(d time.Duration) { f.mu.Lock(); f.timerF = d; f.mu.Unlock() }

// ID is unique per process.
func (f *Flow) ID() uint64 { return f.id }

// RemoteIP is the peer's address, used as Via received= (RFC 3261 §18.2.1).
func (f *Flow) RemoteIP() string { return f.conn.RemoteIP() }

// Identity is the flow's current identity, or nil.
func (f *Flow) Identity() *auth.Identity {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.identity
}

// SetIdentity makes id the connection's identity when there is none yet, or
// when it is the same user with a later expiry (a fresh Bearer on a request).
// The connection is closed with 1008 when its identity expires (docs/protocol.md, "Identity").
func (f *Flow) SetIdentity(id *auth.Identity) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return
	}
	if cur := f.identity; cur != nil && (cur.Sub != id.Sub || !id.Expires.After(cur.Expires)) {
		return
	}
	f.identity = id
	d := time.Until(id.Expires)
	if f.expiry == nil {
		f.expiry = time.AfterFunc(d, func() { f.conn.Close(websocket.StatusPolicyViolation, "token expired") })
	} else {
		f.expiry.Reset(d)
	}
}

// OnClose registers fn to run once when the flow closes (registrar and
// notifier clean-up).
func (f *Flow) OnClose(fn func()) {
	f.mu.Lock()
	if !f.closed {
		f.onClose = append(f.onClose, fn)
		f.mu.Unlock()
		return
	}
	f.mu.Unlock()
	fn()
}

// Closed reports whether the flow has ended.
func (f *Flow) Closed() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.closed
}

// Close ends the flow: pending requests fail with ErrClosed and clean-up
// callbacks run. The connection itself is closed by its owner.
func (f *Flow) Close() {
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return
	}
	f.closed = true
	if f.expiry != nil {
		f.expiry.Stop()
	}
	pending, fns := f.pending, f.onClose
	f.pending, f.onClose = nil, nil
	f.mu.Unlock()
	for _, tx := range pending {
		tx.timer.Stop()
		tx.fn(nil, ErrClosed)
	}
	for _, fn := range fns {
		fn()
	}
}

// Send writes a raw message on the connection.
func (f *Flow) Send(msg []byte) error { return f.conn.Send(msg) }

// Respond answers req on this flow, adding received= to the top Via
// (RFC 3261 §18.2.1: the sent-by of a WebSocket client is *.invalid).
func (f *Flow) Respond(res *sip.Response) error {
	if via := res.Via(); via != nil && !via.Params.Has("received") {
		via.Params.Add("received", f.conn.RemoteIP())
	}
	return f.conn.Send([]byte(res.String()))
}

// Request sends msg, a request whose top Via carries branch, and calls fn
// exactly once with its final response or with ErrTimeout / ErrClosed / the
// send error. fn runs on the connection's read goroutine or a timer: it must
// not block.
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
	f.pending[branch] = tx
	f.mu.Unlock()
	if err := f.conn.Send(msg); err != nil {
		if f.take(branch) == tx {
			tx.timer.Stop()
			fn(nil, err)
		}
	}
}

func (f *Flow) take(branch string) *clientTx {
	f.mu.Lock()
	defer f.mu.Unlock()
	tx := f.pending[branch]
	if tx != nil {
		delete(f.pending, branch)
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
	return f.HandleAnswer(branch, res)
}

// HandleAnswer completes the client transaction of branch with res, a
// final response whose top Via carries branch (the caller scanned it).
func (f *Flow) HandleAnswer(branch string, res *sip.Response) bool {
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

// String identifies the flow in logs.
func (f *Flow) String() string { return "flow-" + strconv.FormatUint(f.id, 10) }

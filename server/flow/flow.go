package flow

import (
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

// Recycler is a Conn that can give a message's memory back once it has
// been written (wsproto.Conn): recycle(msg) is called then, and never when
// SendRecycle fails.
type Recycler interface {
	SendRecycle(msg []byte, recycle func([]byte)) error
}

// Holder is a Recycler that can queue a message without waking its writer
// (wsproto.Conn): SendHeld queues, Kick writes everything queued, so that
// several messages leave in one write(2).
type Holder interface {
	SendHeld(msg []byte, recycle func([]byte)) error
	Kick()
}

var nextID atomic.Uint64

// Flow is one connected client.
type Flow struct {
	id       uint64
	conn     Conn
	recycler Recycler // conn, when it is one
	holder   Holder   // conn, when it is one

	mu       sync.Mutex
	identity *auth.Identity
	expiry   *time.Timer
	pending  map[Branch]clientTx // nil while none waits
	sweeper  *time.Timer         // the Timer F sweep (transaction.go)
	closed   bool
	onClose  []func()
	timerF   time.Duration
}

// New returns the flow of conn, authenticated as id (nil when the upgrade
// carried no token; a later request may bring one).
func New(conn Conn, id *auth.Identity) *Flow {
	f := &Flow{id: nextID.Add(1), conn: conn, timerF: TimerF}
	f.recycler, _ = conn.(Recycler)
	f.holder, _ = conn.(Holder)
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
	if f.sweeper != nil {
		f.sweeper.Stop()
	}
	pending, fns := f.pending, f.onClose
	f.pending, f.onClose = nil, nil
	f.mu.Unlock()
	for _, tx := range pending {
		tx.a.Answered(nil, ErrClosed)
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
	// Written straight into one buffer of about the right size: res.String
	// grows a strings.Builder several times and the conversion to []byte
	// copies the whole message once more.
	w := responseWriter(make([]byte, 0, responseSizeHint+len(res.Body())))
	res.StringWrite(&w)
	return f.conn.Send(w)
}

// responseSizeHint holds a typical response's start line and headers (a 200
// to a PUBLISH is about 450 bytes).
const responseSizeHint = 768

// responseWriter appends to itself (io.StringWriter for sip.Response.StringWrite).
type responseWriter []byte

func (w *responseWriter) WriteString(s string) (int, error) {
	*w = append(*w, s...)
	return len(s), nil
}

// String identifies the flow in logs.
func (f *Flow) String() string { return "flow-" + strconv.FormatUint(f.id, 10) }

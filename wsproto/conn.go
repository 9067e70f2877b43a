package wsproto

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/coder/websocket"
)

var (
	// ErrClosed is returned by Send once the connection is closing or closed.
	ErrClosed = errors.New("wsproto: connection closed")
	// ErrSlowConsumer is returned by Send, and by Serve, when the write queue was full: the
	// connection is closed with 1008 "slow consumer".
	ErrSlowConsumer = errors.New("wsproto: slow consumer")
	// ErrPingTimeout is returned by Serve when the peer did not answer a ping in time.
	ErrPingTimeout = errors.New("wsproto: ping timeout")
	// ErrWriteTimeout is returned by Serve when a write to the socket stalled too long.
	ErrWriteTimeout = errors.New("wsproto: write timeout")
	// ErrNoSubprotocol is returned by Accept and Dial when "sip" was not negotiated.
	ErrNoSubprotocol = errors.New(`wsproto: subprotocol "sip" not negotiated`)
)

// Conn is one SIP-over-WebSocket connection. Send, Close, Done, RemoteIP and QueueLen are
// safe for concurrent use; Serve is called once.
type Conn struct {
	ws   *websocket.Conn
	cork *corkConn // server side only: batches the writer's flushes
	// raw: the writer frames data messages itself into the cork buffer
	// (server side without compression: unmasked, uncompressed frames).
	raw      bool
	remoteIP string
	opts     Options
	// The write queue: a slice that grows only as messages wait (an idle
	// connection holds none), bounded by opts.WriteQueue. A writer goroutine
	// runs only while there is something to write (write.go): an idle
	// connection parks no writer stack.
	qmu     sync.Mutex
	queue   *msgQueue // nil while nothing waits (pooled: queues)
	writing bool      // a writer goroutine is running
	stopped bool      // Serve has ended: no writer may start
	writers sync.WaitGroup
	// stall is the writer's watchdog (write.go), made by the first writer turn and kept:
	// only the one running writer uses it.
	stall *time.Timer
	// writeLoop as a func value, made once: `go c.writeLoop()` would allocate a closure
	// per writer turn.
	startWriter func()

	in inbox // read messages waiting for the handler goroutine (read.go)

	mu      sync.Mutex
	owned   bool // Serve, or Close before Serve, drives the shutdown
	closed  bool // a close was requested; the fields below are set
	code    websocket.StatusCode
	reason  string
	cause   error
	hard    bool          // drop the socket without a close handshake (peer dead or stuck)
	closing chan struct{} // closed when a close is requested
	serving bool          // Serve is reading: a close request starts the closer (serve.go)
	closer  sync.WaitGroup

	done chan struct{} // closed when finished; err is set before
	err  error
}

// newConn wraps ws. The upgrade request is not kept: the caller reads what it needs (the
// token) before Serve, and an idle connection should not pin its headers.
func newConn(ws *websocket.Conn, ip string, opts Options) *Conn {
	ws.SetReadLimit(opts.MaxMessageSize)
	c := &Conn{
		ws:       ws,
		remoteIP: ip,
		opts:     opts,
		closing:  make(chan struct{}),
		done:     make(chan struct{}),
	}
	c.startWriter = c.writeLoop
	return c
}

// outMsg is a queued message and who wants its memory back once written.
type outMsg struct {
	b       []byte
	recycle func([]byte) // nil: nobody
}

// Send queues msg to be written as one text frame and returns at once. msg must not be
// modified afterwards. It returns ErrClosed when the connection is closing, and
// ErrSlowConsumer (closing the connection with 1008) when the write queue is full.
func (c *Conn) Send(msg []byte) error { return c.SendRecycle(msg, nil) }

// SendRecycle is Send for a message whose memory the caller reuses: once msg has been
// written, the writer calls recycle(msg) (it must not block), after which msg is the
// caller's again. recycle is not called when SendRecycle returns an error, nor for a
// message dropped because the connection closed (its memory is then the garbage
// collector's). A nil recycle is Send.
func (c *Conn) SendRecycle(msg []byte, recycle func([]byte)) error {
	return c.enqueue(msg, recycle, true)
}

// SendHeld is SendRecycle without waking the writer: msg waits in the queue until Kick,
// or until a writer runs anyway (it is already writing, or another Send starts it). A
// sender with several messages for one connection queues them held and kicks once, so
// that they leave together in one write(2) instead of the writer taking the first alone.
// The caller must call Kick after a successful SendHeld, without blocking in between.
func (c *Conn) SendHeld(msg []byte, recycle func([]byte)) error {
	return c.enqueue(msg, recycle, false)
}

// Kick starts the writer if messages wait and none runs (see SendHeld). Once Serve has
// ended it drops what waits instead.
func (c *Conn) Kick() {
	c.qmu.Lock()
	switch {
	case c.stopped:
		// No writer may start: drop what was queued held meanwhile.
		if c.queue != nil {
			q := c.queue
			c.queue = nil
			putQueue(q)
		}
	case !c.writing && c.queue != nil && len(c.queue.m) > 0:
		c.writing = true
		c.writers.Add(1)
		go c.startWriter()
	}
	c.qmu.Unlock()
}

func (c *Conn) enqueue(msg []byte, recycle func([]byte), wake bool) error {
	select {
	case <-c.closing:
		return ErrClosed
	default:
	}
	c.qmu.Lock()
	if c.stopped {
		c.qmu.Unlock()
		return ErrClosed
	}
	if c.queue != nil && len(c.queue.m) >= c.opts.WriteQueue {
		c.qmu.Unlock()
		c.closeWith(websocket.StatusPolicyViolation, "slow consumer",
			fmt.Errorf("%w: %d messages queued for %s", ErrSlowConsumer, c.opts.WriteQueue, c.remoteIP), false)
		return ErrSlowConsumer
	}
	if c.queue == nil {
		c.queue = queues.Get().(*msgQueue)
	}
	c.queue.m = append(c.queue.m, outMsg{msg, recycle})
	if wake && !c.writing {
		c.writing = true
		c.writers.Add(1)
		go c.startWriter()
	}
	c.qmu.Unlock()
	return nil
}

// msgQueue is a write queue's memory, pooled between writer turns: an idle connection
// holds none, and a writer turn allocates none.
type msgQueue struct{ m []outMsg }

var queues = sync.Pool{New: func() any { return new(msgQueue) }}

// maxKeptQueue bounds the queues pooled: a burst's memory is not kept.
const maxKeptQueue = 256

func putQueue(q *msgQueue) {
	clear(q.m) // let the sent messages be collected
	if cap(q.m) > maxKeptQueue {
		q.m = nil
	}
	q.m = q.m[:0]
	queues.Put(q)
}

// take hands the writer everything queued and gives the queue the writer's previous
// (written) one, so steady traffic allocates nothing. With nothing queued it ends the
// writer's turn (writing = false), pools the queues and returns nil: the writer goroutine
// then exits.
func (c *Conn) take(done *msgQueue) *msgQueue {
	if done != nil {
		clear(done.m)
		done.m = done.m[:0]
	}
	c.qmu.Lock()
	batch := c.queue
	if batch == nil || len(batch.m) == 0 {
		c.writing = false
		c.queue = nil
		c.qmu.Unlock()
		if done != nil {
			putQueue(done)
		}
		if batch != nil {
			putQueue(batch)
		}
		return nil
	}
	if done != nil && cap(done.m) > maxKeptQueue {
		putQueue(done) // a burst is over: do not keep its memory
		done = nil
	}
	c.queue = done
	c.qmu.Unlock()
	return batch
}

// Close closes the connection with code and reason (at most 123 bytes). It is idempotent and
// safe from any goroutine, including the onMessage callback: while Serve runs it only asks
// Serve to close and returns at once. Called before Serve, it performs the close handshake
// itself (bounded by coder/websocket's 5 s timeouts).
func (c *Conn) Close(code websocket.StatusCode, reason string) {
	if !c.closeWith(code, reason, fmt.Errorf("%w: locally with %d %q", ErrClosed, int(code), reason), false) {
		return
	}
	c.mu.Lock()
	idle := !c.owned
	c.owned = true
	c.mu.Unlock()
	if idle {
		_ = c.ws.Close(code, reason)
		c.finish(c.cause)
	}
}

// closeWith records the first close request and wakes Serve. It reports whether this call
// was the first.
func (c *Conn) closeWith(code websocket.StatusCode, reason string, cause error, hard bool) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return false
	}
	if !hard {
		// Serve's error then also answers websocket.CloseStatus with the code we sent.
		cause = fmt.Errorf("%w (%w)", cause, websocket.CloseError{Code: code, Reason: reason})
	}
	c.closed, c.code, c.reason, c.cause, c.hard = true, code, reason, cause, hard
	close(c.closing)
	if c.serving {
		// Serve's goroutine is blocked reading: the close handshake runs
		// on a goroutine of its own, which exists only while closing.
		c.closer.Add(1)
		go c.runClose(code, reason, hard)
	}
	return true
}

func (c *Conn) finish(err error) {
	c.err = err
	close(c.done)
}

// Done is closed when the connection is finished (Serve's goroutines have ended and the
// socket is closed).
func (c *Conn) Done() <-chan struct{} { return c.done }

// RemoteIP is the peer's IP address without port, taken from the TCP connection
// (X-Forwarded-For is not trusted). On a dialed Conn it is the URL's host.
func (c *Conn) RemoteIP() string { return c.remoteIP }

// QueueLen is the current write-queue depth (for metrics).
func (c *Conn) QueueLen() int {
	c.qmu.Lock()
	defer c.qmu.Unlock()
	if c.queue == nil {
		return 0
	}
	return len(c.queue.m)
}

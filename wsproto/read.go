package wsproto

import (
	"bytes"
	"context"
	"io"
	"sync"
)

// RFC 5626 §4.4.1: a double CRLF is a ping, answered with a single CRLF (the pong).
var (
	crlfPing = []byte("\r\n\r\n")
	crlfPong = []byte("\r\n")
)

// readBufSize is the capacity of a pooled read buffer: a typical SIP message (a PUBLISH
// with its body, a NOTIFY's answer) fits, so reading one allocates nothing but its copy.
const readBufSize = 4 << 10

// maxKeptReadBuf bounds the read buffers pooled between messages, so an occasional big
// message does not stay pinned.
const maxKeptReadBuf = 16 << 10

// readBufs are shared by every connection's read loop: a buffer is taken when a message
// starts and given back once it is copied out, so an idle connection holds none.
var readBufs = sync.Pool{New: func() any { b := make([]byte, 0, readBufSize); return &b }}

// readMessage reads r to its end into buf (from its start), growing it as needed; the
// WebSocket read limit (Options.MaxMessageSize) bounds it.
func readMessage(r io.Reader, buf []byte) ([]byte, error) {
	buf = buf[:0]
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)] // grow by append's policy
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
}

// readLoop delivers whole messages to onMessage until the connection fails.
func (c *Conn) readLoop(onMessage func(msg []byte)) error {
	for {
		// Background: a context that ends during a read closes the socket; closing is
		// Serve's job.
		_, r, err := c.ws.Reader(context.Background())
		if err != nil {
			return err
		}
		bp := readBufs.Get().(*[]byte)
		msg, err := readMessage(r, *bp)
		if err != nil {
			return err
		}
		var out []byte
		switch {
		case bytes.Equal(msg, crlfPing):
			_ = c.Send(crlfPong)
		case len(msg) == 0 || bytes.Equal(msg, crlfPong):
			// a pong to our (never sent) CRLF ping, or an empty frame: no SIP message
		default:
			out = bytes.Clone(msg) // the handler owns it: it may keep the body
		}
		if cap(msg) <= maxKeptReadBuf {
			*bp = msg[:0]
			readBufs.Put(bp)
		}
		if out == nil {
			continue
		}
		select {
		case <-c.closing:
			continue // closing: keep reading only to finish the close handshake
		default:
		}
		c.deliver(out, onMessage)
	}
}

// inboxSize bounds the messages read but not yet handled: a handler that stalls (a
// PUBLISH waiting for the store) stops the reading after a few, as before.
const inboxSize = 4

// inbox hands messages from the read loop to a handler goroutine that exists only while
// messages wait (as the writer does): the goroutine that waits on an idle socket is never
// the one that ran the handler's deep call chains, so its stack stays small.
type inbox struct {
	mu      sync.Mutex
	space   sync.Cond // signalled when a message was taken
	msgs    [inboxSize][]byte
	head, n int
	running bool
	wg      sync.WaitGroup
}

// deliver queues msg for onMessage, waiting while the inbox is full, and starts the
// handler goroutine when none runs. Called by the read loop only.
func (c *Conn) deliver(msg []byte, onMessage func([]byte)) {
	in := &c.in
	in.mu.Lock()
	if in.space.L == nil {
		in.space.L = &in.mu
	}
	for in.n == inboxSize {
		in.space.Wait()
	}
	in.msgs[(in.head+in.n)%inboxSize] = msg
	in.n++
	if !in.running {
		in.running = true
		in.wg.Add(1)
		go c.handle(onMessage)
	}
	in.mu.Unlock()
}

// handle calls onMessage for every queued message, in order, and ends when the inbox is
// empty. Messages still queued once the connection is closing are dropped.
func (c *Conn) handle(onMessage func([]byte)) {
	in := &c.in
	defer in.wg.Done()
	for {
		in.mu.Lock()
		if in.n == 0 {
			in.running = false
			in.mu.Unlock()
			return
		}
		msg := in.msgs[in.head]
		in.msgs[in.head] = nil
		in.head = (in.head + 1) % inboxSize
		in.n--
		in.space.Signal()
		in.mu.Unlock()
		select {
		case <-c.closing:
			continue
		default:
		}
		onMessage(msg)
	}
}

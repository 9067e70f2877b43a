package wsproto

import (
	"bytes"
	"context"
	"sync"
)

// RFC 5626 §4.4.1: a double CRLF is a ping, answered with a single CRLF (the pong).
var (
	crlfPing = []byte("\r\n\r\n")
	crlfPong = []byte("\r\n")
)

// maxKeptReadBuf bounds the read buffers pooled between messages, so an occasional big
// message does not stay pinned.
const maxKeptReadBuf = 16 << 10

// readBufs are shared by every connection's read loop: a buffer is taken when a message
// starts and given back once it is copied out, so an idle connection holds none.
var readBufs = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// readLoop delivers whole messages to onMessage until the connection fails.
func (c *Conn) readLoop(onMessage func(msg []byte)) error {
	for {
		// Background: a context that ends during a read closes the socket; closing is
		// Serve's job.
		_, r, err := c.ws.Reader(context.Background())
		if err != nil {
			return err
		}
		buf := readBufs.Get().(*bytes.Buffer)
		buf.Reset()
		if _, err := buf.ReadFrom(r); err != nil {
			return err
		}
		msg := buf.Bytes()
		var out []byte
		switch {
		case bytes.Equal(msg, crlfPing):
			_ = c.Send(crlfPong)
		case len(msg) == 0 || bytes.Equal(msg, crlfPong):
			// a pong to our (never sent) CRLF ping, or an empty frame: no SIP message
		default:
			out = bytes.Clone(msg)
		}
		if buf.Cap() <= maxKeptReadBuf {
			readBufs.Put(buf)
		}
		if out == nil {
			continue
		}
		select {
		case <-c.closing:
			continue // closing: keep reading only to finish the close handshake
		default:
		}
		onMessage(out)
	}
}

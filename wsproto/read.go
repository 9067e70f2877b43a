package wsproto

import (
	"bytes"
	"context"
)

// RFC 5626 §4.4.1: a double CRLF is a ping, answered with a single CRLF (the pong).
var (
	crlfPing = []byte("\r\n\r\n")
	crlfPong = []byte("\r\n")
)

// maxKeptReadBuf bounds the read buffer kept between messages, so an occasional big message
// does not pin MaxMessageSize of memory on every idle connection.
const maxKeptReadBuf = 16 << 10

// readLoop delivers whole messages to onMessage until the connection fails.
func (c *Conn) readLoop(onMessage func(msg []byte)) error {
	var buf bytes.Buffer
	for {
		// Background: a context that ends during a read closes the socket; closing is
		// Serve's job.
		_, r, err := c.ws.Reader(context.Background())
		if err != nil {
			return err
		}
		buf.Reset()
		if _, err := buf.ReadFrom(r); err != nil {
			return err
		}
		msg := buf.Bytes()
		switch {
		case bytes.Equal(msg, crlfPing):
			_ = c.Send(crlfPong)
			continue
		case len(msg) == 0 || bytes.Equal(msg, crlfPong):
			continue // a pong to our (never sent) CRLF ping, or an empty frame: no SIP message
		}
		select {
		case <-c.closing:
			continue // closing: keep reading only to finish the close handshake
		default:
		}
		onMessage(bytes.Clone(msg))
		if buf.Cap() > maxKeptReadBuf {
			buf = bytes.Buffer{}
		}
	}
}

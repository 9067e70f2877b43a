package wsproto

import (
	"bufio"
	"net"
	"net/http"
	"sync"
)

// Per-connection buffer sizes (see Hijack). The write buffer is tiny because every data
// frame is written corked (write.go): the bytes collect in a pooled cork buffer, held only
// while a batch is written, instead of a buffer each idle connection keeps.
const (
	connReadBuffer  = 512
	connWriteBuffer = 64
)

// maxCork bounds the bytes held back while corked; beyond it writes go straight through.
const maxCork = 32 << 10

var corkBufs = sync.Pool{New: func() any { b := make([]byte, 0, maxCork); return &b }}

// corkConn lets the writer send a batch of messages with one write(2): coder/websocket
// flushes every message to the socket; while corked those flushes are collected and
// written together when the batch ends. Control frames (pongs, pings, close) written
// meanwhile are collected too, so byte order on the socket is kept.
type corkConn struct {
	net.Conn
	mu  sync.Mutex
	buf *[]byte // non-nil while corked
}

func (c *corkConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.buf != nil && len(*c.buf)+len(p) <= maxCork {
		*c.buf = append(*c.buf, p...)
		return len(p), nil
	}
	if err := c.flushLocked(); err != nil {
		return 0, err
	}
	return c.Conn.Write(p)
}

func (c *corkConn) cork() {
	c.mu.Lock()
	c.buf = corkBufs.Get().(*[]byte)
	c.mu.Unlock()
}

// uncork writes what was collected and stops collecting.
func (c *corkConn) uncork() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	err := c.flushLocked()
	if c.buf != nil {
		*c.buf = (*c.buf)[:0]
		corkBufs.Put(c.buf)
		c.buf = nil
	}
	return err
}

func (c *corkConn) flushLocked() error {
	if c.buf == nil || len(*c.buf) == 0 {
		return nil
	}
	_, err := c.Conn.Write(*c.buf)
	*c.buf = (*c.buf)[:0]
	return err
}

// corkingWriter hands coder/websocket a corkConn when it hijacks the HTTP connection.
type corkingWriter struct {
	http.ResponseWriter
	cork *corkConn
}

func (w *corkingWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	nc, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	if err := brw.Writer.Flush(); err != nil {
		nc.Close()
		return nil, nil, err
	}
	w.cork = &corkConn{Conn: nc}
	// coder/websocket keeps these buffers for the connection's life; net/http's
	// are 4 KiB each. SIP messages are mostly under 2 KiB and bigger frames
	// bypass a bufio buffer anyway; writes go through the cork (see
	// connWriteBuffer), so smaller ones save ~7 KiB per idle socket.
	br := brw.Reader
	if br.Buffered() == 0 {
		br = bufio.NewReaderSize(nc, connReadBuffer)
	}
	return w.cork, bufio.NewReadWriter(br, bufio.NewWriterSize(w.cork, connWriteBuffer)), nil
}

func (w *corkingWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

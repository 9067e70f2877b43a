package wsproto

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"sync"
)

// Per-connection buffer sizes (see Hijack). The write buffer is small because every data
// frame is written corked (write.go): the bytes collect in a pooled cork buffer, held only
// while a batch is written, instead of a buffer each idle connection keeps. It holds a
// whole control frame (2 header bytes, at most 125 of payload: RFC 6455 §5.5), so that
// coder/websocket hands each control frame to the corkConn in one Write, never split
// around frames the writer makes itself (writeFrames).
const (
	connReadBuffer  = 512
	connWriteBuffer = 128
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
	mu        sync.Mutex
	buf       *[]byte // non-nil while corked
	closeSent bool    // coder/websocket wrote a close frame: no data frame may follow
	// rd reads the socket (burst.go). Only coder/websocket's reader, under its
	// own lock, calls Read.
	rd io.Reader
}

func (c *corkConn) Read(p []byte) (int, error) { return c.rd.Read(p) }

// opCloseFinal is the first byte of a close frame (FIN, opcode 8).
const opCloseFinal = 0x88

func (c *corkConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(p) > 0 && p[0] == opCloseFinal {
		// Every frame coder/websocket writes on a raw connection is a control frame,
		// and reaches here whole (connWriteBuffer).
		c.closeSent = true
	}
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

// writeFrames writes each message of batch as one text frame, the batch in as few
// write(2) calls as fit in a cork buffer, and recycles each message once copied. It holds
// the corkConn's lock throughout, so coder/websocket's control frames (pongs, pings,
// close) go before or after the batch, whole. Nothing is written after a close frame.
func (c *corkConn) writeFrames(batch []outMsg) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closeSent {
		return net.ErrClosed
	}
	bp := corkBufs.Get().(*[]byte)
	defer func() {
		*bp = (*bp)[:0]
		corkBufs.Put(bp)
	}()
	buf := *bp
	for _, m := range batch {
		if len(buf) > 0 && len(buf)+maxFrameHeader+len(m.b) > maxCork {
			if _, err := c.Conn.Write(buf); err != nil {
				return err
			}
			buf = buf[:0]
		}
		buf = appendFrameHeader(buf, len(m.b))
		buf = append(buf, m.b...) // a message bigger than maxCork grows buf this once
		if m.recycle != nil {
			m.recycle(m.b)
		}
	}
	_, err := c.Conn.Write(buf)
	if cap(buf) <= maxCork {
		*bp = buf
	}
	return err
}

// maxFrameHeader is the longest header of an unmasked frame.
const maxFrameHeader = 10

// appendFrameHeader appends the header of an unmasked, final text frame of n payload bytes
// (RFC 6455 §5.2: 7-bit length, or 126 and 16 bits, or 127 and 64 bits).
func appendFrameHeader(dst []byte, n int) []byte {
	const finText = 0x81
	switch {
	case n <= 125:
		return append(dst, finText, byte(n))
	case n <= 0xffff:
		return append(dst, finText, 126, byte(n>>8), byte(n))
	default:
		return append(dst, finText, 127, byte(uint64(n)>>56), byte(uint64(n)>>48), byte(uint64(n)>>40), byte(uint64(n)>>32),
			byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
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
	w.cork = &corkConn{Conn: nc, rd: socketReader(nc)}
	// coder/websocket keeps these buffers for the connection's life; net/http's
	// are 4 KiB each. SIP messages are mostly under 2 KiB and bigger frames
	// bypass a bufio buffer anyway; writes go through the cork (see
	// connWriteBuffer), so smaller ones save ~7 KiB per idle socket.
	// coder/websocket resets the read buffer to read from the returned conn
	// (after what is already buffered): the corkConn's Read, a burst reader.
	br := brw.Reader
	if br.Buffered() == 0 {
		br = bufio.NewReaderSize(nc, connReadBuffer)
	}
	return w.cork, bufio.NewReadWriter(br, bufio.NewWriterSize(w.cork, connWriteBuffer)), nil
}

func (w *corkingWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

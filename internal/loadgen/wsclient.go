package loadgen

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// wsConn is the generator's own RFC 6455 client connection. The generator
// does not use wsproto.Dial: coder/websocket writes every message with its
// own write(2), and a subscriber socket answers tens of thousands of
// NOTIFYs per second. wsConn reads a whole batch of frames from its buffer,
// queues the answers, and writes them with one write(2) once the buffer is
// drained, so the generator costs a fraction of the hub it measures. It
// speaks only what a SIP client needs: text frames out (masked, RFC 6455
// §5.3), text/binary frames in, ping → pong, close.
type wsConn struct {
	nc net.Conn
	br *bufio.Reader

	mu     sync.Mutex // guards wbuf, closed, and the socket's write side
	wbuf   []byte
	closed bool
	rng    uint64 // masking keys (xorshift, seeded from crypto/rand)

	started bool          // serve was called
	done    chan struct{} // closed when serve has ended
	err     error         // why serve ended (after done)
}

const wsGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

// errWS marks a protocol violation by the server.
var errWS = errors.New("loadgen: websocket protocol error")

// dialWS opens a ws:// connection offering subprotocol "sip" (RFC 7118
// §4.1) from local address from (nil: any); readBuf is the read buffer size
// (big for busy sockets, small for idle ones).
func dialWS(ctx context.Context, rawURL string, from *net.TCPAddr, readBuf int) (*wsConn, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("loadgen: hub URL: %w", err)
	}
	if u.Scheme != "ws" {
		return nil, fmt.Errorf("loadgen: hub URL %q: the generator speaks ws:// (loopback) only", rawURL)
	}
	host := u.Host
	if u.Port() == "" {
		host += ":80"
	}
	d := net.Dialer{}
	if from != nil {
		d.LocalAddr = from
	}
	nc, err := d.DialContext(ctx, "tcp", host)
	if err != nil {
		return nil, fmt.Errorf("loadgen: connect %s: %w", host, err)
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = nc.SetDeadline(dl)
	} else {
		_ = nc.SetDeadline(time.Now().Add(30 * time.Second))
	}
	var key [16]byte
	_, _ = rand.Read(key[:])
	k := base64.StdEncoding.EncodeToString(key[:])
	req := "GET " + u.RequestURI() + " HTTP/1.1\r\nHost: " + u.Host +
		"\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: " + k +
		"\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: sip\r\nUser-Agent: presencehub-bench\r\n\r\n"
	if _, err := io.WriteString(nc, req); err != nil {
		nc.Close()
		return nil, fmt.Errorf("loadgen: handshake: %w", err)
	}
	br := bufio.NewReaderSize(nc, readBuf)
	res, err := http.ReadResponse(br, nil)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("loadgen: handshake: %w", err)
	}
	res.Body.Close()
	sum := sha1.Sum([]byte(k + wsGUID))
	switch {
	case res.StatusCode != http.StatusSwitchingProtocols:
		nc.Close()
		return nil, fmt.Errorf("loadgen: handshake: HTTP %s", res.Status)
	case res.Header.Get("Sec-WebSocket-Accept") != base64.StdEncoding.EncodeToString(sum[:]):
		nc.Close()
		return nil, fmt.Errorf("%w: bad Sec-WebSocket-Accept", errWS)
	case !strings.EqualFold(res.Header.Get("Sec-WebSocket-Protocol"), "sip"):
		nc.Close()
		return nil, fmt.Errorf("%w: subprotocol %q, want sip", errWS, res.Header.Get("Sec-WebSocket-Protocol"))
	}
	_ = nc.SetDeadline(time.Time{})
	c := &wsConn{nc: nc, br: br, done: make(chan struct{})}
	var seed [8]byte
	_, _ = rand.Read(seed[:])
	c.rng = binary.LittleEndian.Uint64(seed[:]) | 1
	return c, nil
}

// Frame opcodes (RFC 6455 §5.2).
const (
	opCont  = 0x0
	opText  = 0x1
	opBin   = 0x2
	opClose = 0x8
	opPing  = 0x9
	opPong  = 0xA
)

// queueLocked appends one masked frame to the write buffer.
func (c *wsConn) queueLocked(op byte, payload []byte) {
	b := c.wbuf
	b = append(b, 0x80|op)
	n := len(payload)
	switch {
	case n < 126:
		b = append(b, 0x80|byte(n))
	case n <= 0xFFFF:
		b = append(b, 0x80|126, byte(n>>8), byte(n))
	default:
		b = append(b, 0x80|127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	c.rng ^= c.rng << 13
	c.rng ^= c.rng >> 7
	c.rng ^= c.rng << 17
	key := uint32(c.rng)
	b = binary.LittleEndian.AppendUint32(b, key)
	start := len(b)
	b = append(b, payload...)
	mask(b[start:], key)
	c.wbuf = b
}

// mask XORs p with key (RFC 6455 §5.3), eight bytes at a time.
func mask(p []byte, key uint32) {
	k8 := uint64(key) | uint64(key)<<32
	i := 0
	for ; i+8 <= len(p); i += 8 {
		binary.LittleEndian.PutUint64(p[i:], binary.LittleEndian.Uint64(p[i:])^k8)
	}
	for j := 0; i < len(p); i, j = i+1, j+1 {
		p[i] ^= byte(key >> (8 * (j % 4)))
	}
}

// queue adds a text frame (one SIP message) to be written by the next flush.
func (c *wsConn) queue(msg []byte) {
	c.mu.Lock()
	if !c.closed {
		c.queueLocked(opText, msg)
	}
	c.mu.Unlock()
}

// flush writes everything queued with one write(2).
func (c *wsConn) flush() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.flushLocked()
}

func (c *wsConn) flushLocked() error {
	if len(c.wbuf) == 0 {
		return nil
	}
	_, err := c.nc.Write(c.wbuf)
	if cap(c.wbuf) > 256<<10 {
		c.wbuf = nil // do not pin a burst's buffer
	} else {
		c.wbuf = c.wbuf[:0]
	}
	return err
}

// send writes one text frame now (with whatever else is queued).
func (c *wsConn) send(msg []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return net.ErrClosed
	}
	c.queueLocked(opText, msg)
	return c.flushLocked()
}

// serve reads frames until the connection ends, calling handle for every
// message; handle must not keep msg (it points into the read buffer) and
// may queue answers, which are written once the buffered input is
// consumed.
func (c *wsConn) serve(handle func(msg []byte)) {
	c.mu.Lock()
	c.started = true
	c.mu.Unlock()
	go func() {
		defer close(c.done)
		c.err = c.readLoop(handle)
		c.mu.Lock()
		c.closed = true
		c.mu.Unlock()
		c.nc.Close()
	}()
}

func (c *wsConn) readLoop(handle func([]byte)) error {
	var frag []byte // a fragmented message being reassembled
	for {
		fin, op, payload, err := c.readFrame()
		if err != nil {
			return err
		}
		switch op {
		case opText, opBin, opCont:
			if op != opCont && frag != nil {
				return fmt.Errorf("%w: new message inside a fragmented one", errWS)
			}
			if !fin || frag != nil {
				frag = append(frag, payload...)
				if !fin {
					continue
				}
				payload, frag = frag, nil
			}
			handle(payload)
		case opPing:
			c.mu.Lock()
			c.queueLocked(opPong, payload)
			c.mu.Unlock()
		case opPong:
		case opClose:
			c.mu.Lock()
			if !c.closed {
				c.queueLocked(opClose, payload[:min(len(payload), 2)])
				_ = c.flushLocked()
				c.closed = true
			}
			c.mu.Unlock()
			return io.EOF
		default:
			return fmt.Errorf("%w: opcode %#x", errWS, op)
		}
		if c.br.Buffered() == 0 {
			if err := c.flush(); err != nil {
				return err
			}
		}
	}
}

// readFrame reads one frame. The payload points into the read buffer when
// it fits there, so it is valid only until the next read.
func (c *wsConn) readFrame() (fin bool, op byte, payload []byte, err error) {
	h, err := c.br.Peek(2)
	if err != nil {
		return false, 0, nil, err
	}
	fin, op = h[0]&0x80 != 0, h[0]&0x0F
	if h[1]&0x80 != 0 {
		return false, 0, nil, fmt.Errorf("%w: masked frame from the server", errWS)
	}
	n := uint64(h[1] & 0x7F)
	hl := 2
	switch n {
	case 126:
		hl = 4
	case 127:
		hl = 10
	}
	if h, err = c.br.Peek(hl); err != nil {
		return false, 0, nil, err
	}
	switch hl {
	case 4:
		n = uint64(binary.BigEndian.Uint16(h[2:]))
	case 10:
		n = binary.BigEndian.Uint64(h[2:])
	}
	if n > 1<<20 {
		return false, 0, nil, fmt.Errorf("%w: %d-byte frame", errWS, n)
	}
	_, _ = c.br.Discard(hl)
	if int(n) <= c.br.Size() {
		if payload, err = c.br.Peek(int(n)); err != nil {
			return false, 0, nil, err
		}
		_, _ = c.br.Discard(int(n))
		return fin, op, payload, nil
	}
	payload = make([]byte, n)
	_, err = io.ReadFull(c.br, payload)
	return fin, op, payload, err
}

// close sends a close frame (1000) and waits, bounded, for the server's
// close, then drops the socket.
func (c *wsConn) close() {
	c.mu.Lock()
	if !c.started {
		c.closed = true
		c.mu.Unlock()
		c.nc.Close()
		return
	}
	if !c.closed {
		c.closed = true
		c.queueLocked(opClose, []byte{0x03, 0xE8})
		_ = c.flushLocked()
	}
	c.mu.Unlock()
	select {
	case <-c.done:
	case <-time.After(5 * time.Second):
		c.nc.Close()
		<-c.done
	}
}

// ended reports whether the connection has ended.
func (c *wsConn) ended() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

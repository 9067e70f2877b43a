//go:build unix

package wsproto

import (
	"io"
	"net"
	"os"
	"sync"
	"syscall"
)

// readBurst is the capacity of a pooled burst buffer: what one read(2) may take from a
// busy socket (a peer that writes many frames at once, e.g. a batch of NOTIFY answers).
const readBurst = 32 << 10

var burstBufs = sync.Pool{New: func() any { b := make([]byte, readBurst); return &b }}

// burstReader reads a socket with one read(2) per burst of incoming bytes, into a pooled
// buffer taken only once the socket is readable and given back as soon as its bytes have
// been handed on: an idle connection waits for readability holding no buffer, and a busy
// one gets everything the kernel holds (up to readBurst) in one call, where the small
// per-connection bufio.Reader on top (connReadBuffer) would need one read per few frames.
//
// It is used by that bufio.Reader alone, from coder/websocket's reader, which reads under
// its own lock: no two Reads run at once.
type burstReader struct {
	nc  net.Conn
	rc  syscall.RawConn
	buf *[]byte // non-nil while bytes read from the socket wait in (*buf)[r:w]
	r   int
	w   int
}

// socketReader is what the per-connection bufio.Reader reads: a burstReader when nc is a
// socket whose descriptor can be read directly (TCP without TLS), else nc itself.
func socketReader(nc net.Conn) io.Reader {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return nc
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nc
	}
	return &burstReader{nc: nc, rc: rc}
}

func (b *burstReader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if b.buf == nil {
		if err := b.fill(); err != nil {
			return 0, err
		}
	}
	n := copy(p, (*b.buf)[b.r:b.w])
	b.r += n
	if b.r == b.w {
		b.release()
	}
	return n, nil
}

// fill waits until the socket is readable (net's poller; read deadlines and Close end the
// wait) and reads what it holds into a pooled buffer.
func (b *burstReader) fill() error {
	var (
		n    int
		rerr error
	)
	err := b.rc.Read(func(fd uintptr) bool {
		if b.buf == nil {
			b.buf = burstBufs.Get().(*[]byte)
		}
		for {
			n, rerr = syscall.Read(int(fd), *b.buf)
			if rerr != syscall.EINTR {
				break
			}
		}
		if rerr == syscall.EAGAIN {
			b.release() // nothing to read: wait without the buffer
			return false
		}
		return true
	})
	switch {
	case err != nil: // closed, or a deadline passed
		b.release()
		return err
	case rerr != nil:
		b.release()
		return &net.OpError{Op: "read", Net: b.nc.LocalAddr().Network(), Source: b.nc.LocalAddr(),
			Addr: b.nc.RemoteAddr(), Err: os.NewSyscallError("read", rerr)}
	case n == 0:
		b.release()
		return io.EOF
	}
	b.r, b.w = 0, n
	return nil
}

func (b *burstReader) release() {
	if b.buf != nil {
		burstBufs.Put(b.buf)
		b.buf = nil
	}
	b.r, b.w = 0, 0
}

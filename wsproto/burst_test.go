//go:build unix

package wsproto

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// A peer that writes many frames at once (a batch of NOTIFY answers) is read with one
// read(2) per burst, not one per frame or two: the hub's syscalls per message fall with
// load instead of staying at one per message.
func TestServe_BurstOfFrames_ReadInFewReads(t *testing.T) {
	answer := "SIP/2.0 200 OK\r\nVia: SIP/2.0/WSS df7jal23ls0d.invalid;branch=z9hG4bK56sdasks;rport\r\n" +
		"To: <sip:1001@hub.invalid>;tag=8321234356\r\nFrom: <sip:presence@hub.invalid>;tag=a73kszlfl\r\n" +
		"Call-ID: 1j9FpLxk3uxtm8tn@hub.invalid\r\nCSeq: %d NOTIFY\r\nContact: <sip:1001@df7jal23ls0d.invalid;transport=ws>\r\n" +
		"Content-Length: 0\r\n\r\n"
	tests := []struct {
		name     string
		frames   int
		msg      func(i int) string
		maxReads int64
	}{
		// Each ≈ 380 bytes framed; 100 of them ≈ 38 KB, two burst buffers' worth.
		{"NOTIFY answers", 100, func(i int) string { return fmt.Sprintf(answer, i) }, 10},
		// ≈ 12 bytes each framed; 2,000 of them ≈ 25 KB.
		{"CRLF keepalives and short messages", 2000, func(i int) string {
			if i%2 == 0 {
				return "\r\n"
			}
			return fmt.Sprintf("MESSAGE %d", i)
		}, 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var want []string
			for i := range tt.frames {
				if m := tt.msg(i); m != "\r\n" {
					want = append(want, m)
				}
			}
			var (
				reads atomic.Int64
				mu    sync.Mutex
				got   []string
				all   = make(chan struct{})
				ready = make(chan struct{})
			)
			s := startCountingServer(t, &reads, func(ctx context.Context, c *Conn) error {
				close(ready)
				return c.Serve(ctx, func(msg []byte) {
					mu.Lock()
					defer mu.Unlock()
					if got = append(got, string(msg)); len(got) == len(want) {
						close(all)
					}
				})
			})
			nc := rawWebSocket(t, s)
			select {
			case <-ready:
			case <-time.After(5 * time.Second):
				t.Fatal("not accepted")
			}
			var burst []byte
			for i := range tt.frames {
				burst = appendMaskedFrame(burst, []byte(tt.msg(i)))
			}
			before := reads.Load()
			if _, err := nc.Write(burst); err != nil { // one write(2)
				t.Fatal(err)
			}
			select {
			case <-all:
			case <-time.After(10 * time.Second):
				t.Fatal("not every message delivered")
			}
			n := reads.Load() - before
			mu.Lock()
			defer mu.Unlock()
			if strings.Join(got, "|") != strings.Join(want, "|") {
				t.Fatalf("delivered %d messages, not the %d sent in order", len(got), len(want))
			}
			t.Logf("%d frames (%d bytes) in %d reads", tt.frames, len(burst), n)
			if n > tt.maxReads {
				t.Errorf("%d frames written at once took %d reads, want at most %d", tt.frames, n, tt.maxReads)
			}
		})
	}
}

// startCountingServer is startServer on a listener whose connections count their reads:
// net.Conn.Read calls, and read(2) attempts through the raw descriptor.
func startCountingServer(t *testing.T, reads *atomic.Int64, handle func(ctx context.Context, c *Conn) error) *testServer {
	t.Helper()
	return startServerWrapped(t, func(ln net.Listener) net.Listener {
		return countingListener{Listener: ln, reads: reads}
	}, Options{}, handle)
}

type countingListener struct {
	net.Listener
	reads *atomic.Int64
}

func (l countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &countingConn{TCPConn: c.(*net.TCPConn), reads: l.reads}, nil
}

type countingConn struct {
	*net.TCPConn
	reads *atomic.Int64
}

func (c *countingConn) Read(p []byte) (int, error) {
	c.reads.Add(1)
	return c.TCPConn.Read(p)
}

func (c *countingConn) SyscallConn() (syscall.RawConn, error) {
	rc, err := c.TCPConn.SyscallConn()
	return countingRawConn{RawConn: rc, reads: c.reads}, err
}

type countingRawConn struct {
	syscall.RawConn
	reads *atomic.Int64
}

func (rc countingRawConn) Read(f func(fd uintptr) bool) error {
	return rc.RawConn.Read(func(fd uintptr) bool {
		rc.reads.Add(1)
		return f(fd)
	})
}

// rawWebSocket opens a TCP connection to s and performs the opening handshake by hand
// (RFC 6455 §4.1), so the test controls how frames are written.
func rawWebSocket(t *testing.T, s *testServer) net.Conn {
	t.Helper()
	nc, err := net.DialTimeout("tcp", s.hs.Listener.Addr().String(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	_ = nc.SetDeadline(time.Now().Add(10 * time.Second))
	req := "GET / HTTP/1.1\r\nHost: hub.invalid\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n" +
		"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Protocol: sip\r\n\r\n"
	if _, err := nc.Write([]byte(req)); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(nc), nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("handshake: %s", resp.Status)
	}
	return nc
}

// appendMaskedFrame appends a final text frame as a client sends it (masked, RFC 6455 §5.3).
func appendMaskedFrame(dst, payload []byte) []byte {
	key := [4]byte{0x37, 0xfa, 0x21, 0x3d}
	dst = append(dst, 0x81)
	switch n := len(payload); {
	case n <= 125:
		dst = append(dst, 0x80|byte(n))
	default:
		dst = append(dst, 0x80|126)
		dst = binary.BigEndian.AppendUint16(dst, uint16(n))
	}
	dst = append(dst, key[:]...)
	start := len(dst)
	dst = append(dst, payload...)
	for i := range dst[start:] {
		dst[start+i] ^= key[i%4]
	}
	return dst
}

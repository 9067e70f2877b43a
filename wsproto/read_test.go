package wsproto

import (
	"bytes"
	"context"
	"io"
	"syscall"
	"testing"
	"testing/iotest"
	"time"

	"github.com/coder/websocket"
)

func TestReadMessage_WholeMessageWhateverItsSizeAndChunking(t *testing.T) {
	tests := []struct {
		name string
		size int
		buf  []byte // the pooled buffer handed in
	}{
		{"empty message", 0, make([]byte, 0, readBufSize)},
		{"fits the pooled buffer", 700, make([]byte, 0, readBufSize)},
		{"exactly the pooled buffer", readBufSize, make([]byte, 0, readBufSize)},
		{"grows past the pooled buffer", 3*readBufSize + 17, make([]byte, 0, readBufSize)},
		{"stale bytes in the buffer are overwritten", 10, []byte("old message")},
		{"no buffer", 100, nil},
	}
	for _, tt := range tests {
		for _, chunked := range []bool{false, true} {
			msg := bytes.Repeat([]byte("0123456789abcdef"), tt.size/16+1)[:tt.size]
			var r io.Reader = bytes.NewReader(msg)
			if chunked {
				r = iotest.OneByteReader(r)
			}
			got, err := readMessage(r, tt.buf)
			if err != nil || !bytes.Equal(got, msg) {
				t.Errorf("%s (one byte per read: %v): got %d bytes, err %v; want the %d bytes sent", tt.name, chunked, len(got), err, len(msg))
			}
		}
	}
}

// BenchmarkReceive measures the read side of one message from a coder/websocket client to
// the handler (a PUBLISH-sized message, ≈ 1.2 KB): allocs/op are the whole process's per
// message, client writes included.
func BenchmarkReceive(b *testing.B) {
	msg := bytes.Repeat([]byte("x"), 1200)
	got := make(chan struct{}, 1)
	n := 0
	s := startServer(b, Options{}, func(ctx context.Context, c *Conn) error {
		return c.Serve(ctx, func(m []byte) {
			if n++; n == b.N {
				got <- struct{}{}
			}
		})
	})
	ws := dialRaw(&testing.T{}, s.url)
	defer ws.CloseNow()
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	b.ResetTimer()
	c0 := cpuTime()
	for range b.N {
		if err := ws.Write(context.Background(), websocket.MessageText, msg); err != nil {
			b.Fatal(err)
		}
	}
	select {
	case <-got:
	case <-time.After(30 * time.Second):
		b.Fatal("messages not delivered")
	}
	b.ReportMetric(float64(cpuTime()-c0)/float64(b.N), "cpu-ns/op")
}

// cpuTime is the process's user+system CPU time: on a shared machine wall-clock ns/op is
// noisy, cpu-ns/op (every goroutine and the kernel) is what one op costs.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

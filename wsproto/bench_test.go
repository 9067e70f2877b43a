package wsproto

import (
	"context"
	"io"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

// A NOTIFY-sized SIP message (≈ 600 bytes).
var benchMsg = []byte("NOTIFY sip:1001@a1b2c3.invalid;transport=ws SIP/2.0\r\n" +
	"Via: SIP/2.0/WSS hub.example.com;branch=z9hG4bK776asdhds\r\nMax-Forwards: 70\r\n" +
	"To: <sip:1001@example.com>;tag=8cfe\r\nFrom: <sip:1002@example.com>;tag=5c7a\r\n" +
	"Call-ID: 3848276298220188511@a1b2c3.invalid\r\nCSeq: 7 NOTIFY\r\n" +
	"Contact: <sip:hub.example.com;transport=ws>\r\nEvent: dialog\r\n" +
	"Subscription-State: active;expires=3599\r\nContent-Type: application/dialog-info+xml\r\n" +
	"Content-Length: 200\r\n\r\n" + strings.Repeat("x", 200))

// BenchmarkSend measures Send plus the writer over loopback to a coder/websocket client that
// reads every message: ns/op and allocs/op are per message (both ends, whole process).
func BenchmarkSend(b *testing.B) {
	s := startServer(b, Options{}, nil)
	ws := dialRaw(&testing.T{}, s.url)
	c := s.conn(&testing.T{})
	defer func() { ws.CloseNow(); <-c.Done() }()

	got := make(chan struct{})
	go func() {
		defer close(got)
		buf := make([]byte, 4096)
		for i := 0; i < b.N; i++ {
			_, r, err := ws.Reader(context.Background())
			if err != nil {
				b.Error(err)
				return
			}
			for {
				if _, err := r.Read(buf); err == io.EOF {
					break
				} else if err != nil {
					b.Error(err)
					return
				}
			}
		}
	}()
	b.SetBytes(int64(len(benchMsg)))
	b.ReportAllocs()
	w0 := writeSyscalls()
	b.ResetTimer()
	start := time.Now()
	for range b.N {
		for c.QueueLen() >= DefaultWriteQueue-1 {
			runtime.Gosched()
		}
		if err := c.Send(benchMsg); err != nil {
			b.Fatal(err)
		}
	}
	<-got
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
	if w0 >= 0 {
		b.ReportMetric(float64(writeSyscalls()-w0)/float64(b.N), "writes/msg")
	}
}

// writeSyscalls is the process's write(2) count from /proc/self/io (Linux), -1 elsewhere.
func writeSyscalls() int64 {
	b, err := os.ReadFile("/proc/self/io")
	if err != nil {
		return -1
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "syscw: "); ok {
			n, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			return n
		}
	}
	return -1
}

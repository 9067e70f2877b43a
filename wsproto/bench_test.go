package wsproto

import (
	"bufio"
	"context"
	"io"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
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

// BenchmarkSend_OneAtATime: one message sent and read by the peer before the next, as a
// subscriber socket gets a NOTIFY now and then: every message is a writer turn of its own
// (the writer starts, writes, finds the queue empty and ends). The peer reads the raw
// frames into one buffer, so allocs/op are the server side's.
func BenchmarkSend_OneAtATime(b *testing.B) {
	s := startServer(b, Options{}, nil)
	t := &testing.T{}
	nc := rawUpgrade(t, s)
	defer nc.Close()
	c := s.conn(t)
	r := bufio.NewReaderSize(nc, 4096)
	buf := make([]byte, 4096)
	b.SetBytes(int64(len(benchMsg)))
	b.ReportAllocs()
	w0 := writeSyscalls()
	defer reportCPU(b)()
	var h [4]byte
	for b.Loop() {
		if err := c.Send(benchMsg); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(r, h[:4]); err != nil || h[1] != 126 {
			b.Fatalf("frame header %x: %v", h, err)
		}
		n := int(h[2])<<8 | int(h[3])
		if _, err := io.ReadFull(r, buf[:n]); err != nil || n != len(benchMsg) {
			b.Fatalf("payload of %d bytes: %v", n, err)
		}
	}
	if w0 >= 0 {
		b.ReportMetric(float64(writeSyscalls()-w0)/float64(b.N), "writes/msg")
	}
}

// reportCPU starts the CPU clock (user+system time of the process, every goroutine and
// the kernel included: on a shared machine wall-clock ns/op is noisy); call the returned
// func after the loop.
func reportCPU(b *testing.B) func() {
	cpu := func() time.Duration {
		var ru syscall.Rusage
		if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
			return 0
		}
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	start := cpu()
	return func() { b.ReportMetric(float64(cpu()-start)/float64(b.N), "cpu-ns/op") }
}

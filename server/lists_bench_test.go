package server_test

// Resource-list NOTIFY cost for a 500-member dialog list on one real
// WebSocket (a real hub, SQLite, the client in the same process):
//
//	go test -run '^$' -bench BenchmarkList500 -benchmem ./server/
//
// Per op: one member's state changes (PUBLISH into the compositor) and the
// partial NOTIFY reaches the client (OneChange), or a refresh brings the
// full state (FullState). wire-B/op counts the hub's bytes as read from
// the socket (frames, compressed or not, plus the 200 to a refresh);
// cpu-ns/op is the process's user+system CPU per op (hub and client).

import (
	"context"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/emiago/sipgo/sip"
	"github.com/presencehub/presencehub/compositor"
	"github.com/presencehub/presencehub/internal/sipclient"
	"github.com/presencehub/presencehub/server"
	"github.com/presencehub/presencehub/server/servertest"
	"github.com/presencehub/presencehub/wsproto"
)

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

type listBench struct {
	hub   *servertest.Hub
	etags []string
	c     *sipclient.Client
	ch    chan *sip.Request
	sub   *sip.Request
	res   *sip.Response
	wire  atomic.Int64
}

func newListBench(b *testing.B, deflate bool) *listBench {
	hub := servertest.Start(b, servertest.Options{Configure: func(c *server.Config) { c.ListBatch = -1 }})
	lb := &listBench{hub: hub, etags: bigList(b, hub, 500), ch: make(chan *sip.Request, 16)}
	opts := sipclient.Options{Incoming: lb.ch, WS: wsproto.Options{MaxMessageSize: 1 << 20, HTTPClient: countingClient(&lb.wire)}}
	if deflate {
		opts.WS.Compression = websocket.CompressionNoContextTakeover
	}
	ctx := context.Background()
	lb.c = hub.Dial(ctx, "2000", opts)
	sub, err := lb.c.NewRequest(sip.SUBSCRIBE, servertest.AOR("2000"), servertest.AOR("big"))
	if err != nil {
		b.Fatal(err)
	}
	for _, h := range [][2]string{{"Event", "dialog"}, {"Expires", "3600"}, {"Supported", "eventlist"}, {"Accept", "multipart/related, application/rlmi+xml, application/dialog-info+xml"}} {
		sub.AppendHeader(sip.NewHeader(h[0], h[1]))
	}
	lb.sub = sub
	if lb.res, err = lb.c.Do(ctx, sub); err != nil || lb.res.StatusCode != 200 {
		b.Fatalf("SUBSCRIBE: %v %v", err, lb.res)
	}
	lb.next(b)
	return lb
}

func (lb *listBench) next(b *testing.B) *sip.Request {
	select {
	case r := <-lb.ch:
		return r
	case <-time.After(10 * time.Second):
		b.Fatal("no NOTIFY")
		return nil
	}
}

func (lb *listBench) report(b *testing.B, wire int64, cpu time.Duration) {
	b.ReportMetric(float64(wire)/float64(b.N), "wire-B/op")
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/op")
}

func BenchmarkList500(b *testing.B) {
	for _, mode := range []struct {
		name    string
		deflate bool
	}{{"plain", false}, {"deflate", true}} {
		b.Run("OneChange/"+mode.name, func(b *testing.B) {
			lb := newListBench(b, mode.deflate)
			ctx := context.Background()
			early := make([]bool, 500) // bigList: every third rings
			for m := range early {
				early[m] = m%3 == 0
			}
			b.ReportAllocs()
			w0, c0 := lb.wire.Load(), cpuTime()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				m := i % 500
				early[m] = !early[m]
				state := "confirmed"
				if early[m] {
					state = "early"
				}
				ext := servertest.AOR(itoa(3000 + m))
				res, err := lb.hub.Server.Compositor().Publish(ctx, compositor.PublishRequest{Resource: ext, Event: "dialog", Expires: 3600,
					IfMatch: []string{lb.etags[m]}, ContentType: "application/dialog-info+xml", Body: dialogInfo(ext, "call1", state), Publisher: "b"})
				if err != nil {
					b.Fatal(err)
				}
				lb.etags[m] = res.ETag
				lb.next(b)
			}
			b.StopTimer()
			lb.report(b, lb.wire.Load()-w0, cpuTime()-c0)
		})
		b.Run("FullState/"+mode.name, func(b *testing.B) {
			lb := newListBench(b, mode.deflate)
			ctx := context.Background()
			b.ReportAllocs()
			w0, c0 := lb.wire.Load(), cpuTime()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				refresh := sipclient.InDialog(lb.sub, lb.res)
				if res, err := lb.c.Do(ctx, refresh); err != nil || res.StatusCode != 200 {
					b.Fatalf("refresh: %v %v", err, res)
				}
				lb.next(b)
			}
			b.StopTimer()
			lb.report(b, lb.wire.Load()-w0, cpuTime()-c0)
		})
	}
}

func itoa(i int) string {
	const digits = "0123456789"
	if i == 0 {
		return "0"
	}
	var b [20]byte
	n := len(b)
	for i > 0 {
		n--
		b[n] = digits[i%10]
		i /= 10
	}
	return string(b[n:])
}

package compositor_test

import (
	"context"
	"fmt"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/presencehub/presencehub/compositor"
	"github.com/presencehub/presencehub/compositor/store/sqlitestore"
)

// cpuTime is the process's user+system CPU time. The machine is shared, so
// wall-clock ns/op is noisy; cpu-ns/op (all goroutines, SQLite's C code
// and the kernel included) is what one PUBLISH costs.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportPublish starts the CPU clock; call the returned func after the loop.
func reportPublish(b *testing.B) func() {
	start := cpuTime()
	return func() {
		b.ReportMetric(float64(cpuTime()-start)/float64(b.N), "cpu-ns/op")
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "PUBLISH/s")
	}
}

func benchCompositor(b *testing.B, sync string) *compositor.Compositor {
	b.Helper()
	ctx := context.Background()
	s, err := sqlitestore.Open(ctx, filepath.Join(b.TempDir(), "bench.db"), sqlitestore.Options{Synchronous: sync})
	if err != nil {
		b.Fatal(err)
	}
	c, err := compositor.New(ctx, compositor.Config{Store: s})
	if err != nil {
		b.Fatal(err)
	}
	c.Subscribe(func(compositor.Change) {}) // a listener, as in the server
	b.Cleanup(func() { c.Close(); s.Close() })
	return c
}

// BenchmarkPublish measures PUBLISH end to end (RFC 3903 processing,
// parse, SQLite commit, cache, feed) on 1000 resources: each op modifies
// one resource's publication with a new body, or refreshes it.
func BenchmarkPublish(b *testing.B) {
	for _, sync := range []string{"NORMAL", "FULL"} {
		for _, kind := range []string{"modify", "refresh", "initial"} {
			b.Run(fmt.Sprintf("sqlite-%s/%s", sync, kind), func(b *testing.B) {
				c := benchCompositor(b, sync)
				ctx := context.Background()
				const n = 1000
				reqs := make([]compositor.PublishRequest, n)
				tags := make([]string, n)
				for i := range n {
					res := fmt.Sprintf("sip:%d@hub.test", 1000+i)
					reqs[i] = compositor.PublishRequest{Resource: res, Event: "presence", Expires: 3600,
						ContentType: "application/pidf+xml", Body: pidfBody(res, "t1=open"), Publisher: "bench"}
					r, err := c.Publish(ctx, reqs[i])
					if err != nil {
						b.Fatal(err)
					}
					tags[i] = r.ETag
				}
				bodies := [2][][]byte{make([][]byte, n), make([][]byte, n)}
				for i := range n {
					bodies[0][i] = pidfBody(reqs[i].Resource, "t1=open")
					bodies[1][i] = pidfBody(reqs[i].Resource, "t1=closed")
				}
				b.ReportAllocs()
				b.ResetTimer()
				done := reportPublish(b)
				for i := 0; i < b.N; i++ {
					j := i % n
					r := reqs[j]
					switch kind {
					case "modify":
						r.IfMatch = []string{tags[j]}
						r.Body = bodies[(i/n)%2][j]
					case "refresh":
						r.IfMatch = []string{tags[j]}
						r.Body, r.ContentType = nil, ""
					case "initial":
						r.Resource = fmt.Sprintf("sip:x%d@hub.test", i)
						r.Body = pidfBody(r.Resource, "t1=open")
					}
					res, err := c.Publish(ctx, r)
					if err != nil {
						b.Fatal(err)
					}
					if kind != "initial" {
						tags[j] = res.ETag
					}
				}
				done()
			})
		}
	}
}

// BenchmarkPublishParallel is PUBLISH modify from many goroutines (the
// server handles connections concurrently); GOMAXPROCS bounds the cores.
func BenchmarkPublishParallel(b *testing.B) { benchPublishParallel(b, 1) }

// BenchmarkPublishConcurrent is BenchmarkPublishParallel with 8 publishers
// per core, closer to a hub serving many connections: the store's group
// commit shares transactions among them.
func BenchmarkPublishConcurrent(b *testing.B) { benchPublishParallel(b, 8) }

func benchPublishParallel(b *testing.B, perCore int) {
	c := benchCompositor(b, "NORMAL")
	b.SetParallelism(perCore)
	ctx := context.Background()
	var next chan int = make(chan int, 1)
	next <- 0
	b.ReportAllocs()
	b.ResetTimer()
	done := reportPublish(b)
	b.RunParallel(func(pb *testing.PB) {
		id := <-next
		next <- id + 1
		res := fmt.Sprintf("sip:p%d@hub.test", id)
		r := compositor.PublishRequest{Resource: res, Event: "presence", Expires: 3600,
			ContentType: "application/pidf+xml", Body: pidfBody(res, "t1=open")}
		bodies := [][]byte{pidfBody(res, "t1=closed"), pidfBody(res, "t1=open")}
		tag := ""
		for i := 0; pb.Next(); i++ {
			if tag != "" {
				r.IfMatch = []string{tag}
				r.Body = bodies[i%2]
			}
			out, err := c.Publish(ctx, r)
			if err != nil {
				b.Error(err)
				return
			}
			tag = out.ETag
		}
	})
	done()
}

func BenchmarkView(b *testing.B) {
	c := benchCompositor(b, "NORMAL")
	ctx := context.Background()
	if _, err := c.Publish(ctx, presenceReq(300, "a=open")); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		_ = c.View(alice, "presence")
	}
}

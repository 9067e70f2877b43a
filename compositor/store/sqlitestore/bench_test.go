package sqlitestore_test

import (
	"context"
	"fmt"
	"path/filepath"
	"runtime"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/presencehub/presencehub/compositor/store"
	"github.com/presencehub/presencehub/compositor/store/sqlitestore"
)

func benchStore(b *testing.B, n int) (*sqlitestore.Store, []store.Publication) {
	b.Helper()
	ctx := context.Background()
	s, err := sqlitestore.Open(ctx, filepath.Join(b.TempDir(), "bench.db"), sqlitestore.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	ps := make([]store.Publication, n)
	for i := range ps {
		p, err := s.Create(ctx, benchPub(fmt.Sprintf("p%d", i)))
		if err != nil {
			b.Fatal(err)
		}
		ps[i] = p
	}
	return s, ps
}

func benchPub(id string) store.Publication {
	now := time.Now()
	return store.Publication{ID: id, Resource: "sip:" + id + "@hub.test", Event: "presence", ETag: "e-" + id,
		Expires: now.Add(time.Hour), Created: now, Updated: now, ContentType: "application/pidf+xml",
		Body: []byte(`<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:a@b"><tuple id="t"><status><basic>open</basic></status></tuple></presence>`)}
}

// cpuTime is the process's user+system CPU time. The machine is shared, so
// wall-clock ns/op is noisy; cpu-ns/op (all goroutines, SQLite's C code
// and the kernel included) is what one op costs.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportCPU starts the CPU clock; call the returned func after the loop.
func reportCPU(b *testing.B) func() {
	start := cpuTime()
	return func() {
		b.ReportMetric(float64(cpuTime()-start)/float64(b.N), "cpu-ns/op")
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
	}
}

// reportWrites is reportCPU plus the WAL pages (frames) written per op:
// what a write costs in I/O, independent of the machine's load.
func reportWrites(b *testing.B, s *sqlitestore.Store) func() {
	cpu := reportCPU(b)
	start, err := sqlitestore.WALFrames(s)
	if err != nil {
		b.Fatal(err)
	}
	return func() {
		cpu()
		end, err := sqlitestore.WALFrames(s)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(end-start)/float64(b.N), "pages/op")
	}
}

func BenchmarkCreate(b *testing.B) {
	s, _ := benchStore(b, 0)
	ctx := context.Background()
	b.ReportAllocs()
	defer reportWrites(b, s)()
	for i := 0; i < b.N; i++ {
		if _, err := s.Create(ctx, benchPub(fmt.Sprintf("n%d", i))); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkReplace(b *testing.B) {
	s, ps := benchStore(b, 1000)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	defer reportWrites(b, s)()
	for i := 0; i < b.N; i++ {
		j := i % len(ps)
		p := ps[j]
		p.ETag = fmt.Sprintf("e%d", i)
		np, err := s.Replace(ctx, p, p.Rev)
		if err != nil {
			b.Fatal(err)
		}
		ps[j] = np
	}
}

// BenchmarkReplaceParallel is compare-and-swap updates from many
// goroutines (8 per core, as concurrent PUBLISHes): group commit shares
// one transaction among the writes queued meanwhile.
func BenchmarkReplaceParallel(b *testing.B) {
	s, ps := benchStore(b, 1000)
	ctx := context.Background()
	var next atomic.Int64
	b.SetParallelism(8)
	b.ReportAllocs()
	b.ResetTimer()
	defer reportWrites(b, s)()
	b.RunParallel(func(pb *testing.PB) {
		p := ps[int(next.Add(1)-1)%len(ps)] // distinct per goroutine while < 1000
		for i := 0; pb.Next(); i++ {
			p.ETag = fmt.Sprintf("%s-%d", p.ID, i)
			np, err := s.Replace(ctx, p, p.Rev)
			if err != nil {
				b.Error(err)
				return
			}
			p = np
		}
	})
}

// BenchmarkReplaceHub is the hub at peak: 64 concurrent PUBLISHes (32
// goroutines per core on 2 cores) over 1,000 dialog publications of the
// hub's size, each a new entity-tag, body and expiry.
func BenchmarkReplaceHub(b *testing.B) {
	ctx := context.Background()
	s, err := sqlitestore.Open(ctx, filepath.Join(b.TempDir(), "hub.db"), sqlitestore.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	const n = 1000
	ps := make([]store.Publication, n)
	for i := range ps {
		if ps[i], err = s.Create(ctx, sqlitestore.HubPub(i)); err != nil {
			b.Fatal(err)
		}
	}
	writers := 64
	b.SetParallelism(max(writers/runtime.GOMAXPROCS(0), 1))
	var next atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	defer reportWrites(b, s)()
	b.RunParallel(func(pb *testing.PB) {
		// Writer g owns publications g, g+w, g+2w, …: no two writers
		// race on one (the compositor serialises a resource's PUBLISHes).
		g := int(next.Add(1) - 1)
		var mine []store.Publication
		for j := g % n; j < n; j += writers {
			mine = append(mine, ps[j])
		}
		for i := 0; pb.Next(); i++ {
			k := i % len(mine)
			p := mine[k]
			p.ETag = fmt.Sprintf("%08d-%017d", g, i)
			p.Expires = time.Now().Add(time.Hour)
			p.Updated = time.Now()
			np, err := s.Replace(ctx, p, p.Rev)
			if err != nil {
				b.Error(err)
				return
			}
			mine[k] = np
		}
	})
}

func BenchmarkGet(b *testing.B) {
	s, ps := benchStore(b, 1000)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := s.Get(ctx, ps[i%len(ps)].ID); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkFindByETag(b *testing.B) {
	s, ps := benchStore(b, 1000)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		p := ps[i%len(ps)]
		if _, err := s.FindByETag(ctx, p.Resource, p.ETag); err != nil {
			b.Fatal(err)
		}
	}
}

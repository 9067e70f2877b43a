package compositor_test

import (
	"context"
	"fmt"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/presencehub/presencehub/compositor"
	"github.com/presencehub/presencehub/compositor/store/sqlitestore"
)

// memResources is how many resources (each with a dialog and a presence
// publication of about 450 bytes) the memory benchmarks store.
const memResources = 2000

func memRes(i int) string { return fmt.Sprintf("sip:%d@hub.test", 100000+i) }

// memStore stores memResources resources through a compositor and returns
// the closed store's path.
func memStore(b *testing.B) string {
	b.Helper()
	ctx := context.Background()
	path := filepath.Join(b.TempDir(), "mem.db")
	s, err := sqlitestore.Open(ctx, path, sqlitestore.Options{})
	if err != nil {
		b.Fatal(err)
	}
	c, err := compositor.New(ctx, compositor.Config{Store: s})
	if err != nil {
		b.Fatal(err)
	}
	for i := range memResources {
		r := memRes(i)
		d := fmt.Sprintf(`d%d=confirmed`, i)
		if _, err := c.Publish(ctx, compositor.PublishRequest{Resource: r, Event: "dialog", Expires: 3600,
			ContentType: "application/dialog-info+xml", Body: dialogBody(r, d), Publisher: "pbx"}); err != nil {
			b.Fatal(err)
		}
		if _, err := c.Publish(ctx, compositor.PublishRequest{Resource: r, Event: "presence", Expires: 3600,
			ContentType: "application/pidf+xml", Body: pidfBody(r, "desk=open", "mobile=closed", "web=open"), Publisher: "pbx"}); err != nil {
			b.Fatal(err)
		}
	}
	c.Close()
	s.Close()
	return path
}

func heapAlloc() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// BenchmarkMemory states what stored state costs in the hub's memory, in
// bytes: B/stored-pub is the heap a started compositor holds per stored
// publication nobody has asked for (lazy loading: none), B/loaded-pub the
// heap per publication once its resource is loaded (the record with its
// body, the parsed document, its share of the composed view and its
// rendered body). The op is the first View of a stored resource: one
// indexed read, parse, compose, render.
func BenchmarkMemory(b *testing.B) {
	path := memStore(b)
	ctx := context.Background()
	s, err := sqlitestore.Open(ctx, path, sqlitestore.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	base := heapAlloc()
	c, err := compositor.New(ctx, compositor.Config{Store: s})
	if err != nil {
		b.Fatal(err)
	}
	started := heapAlloc()
	for i := range memResources {
		c.View(memRes(i), "dialog")
	}
	loaded := heapAlloc()
	runtime.KeepAlive(c)
	c.Close()
	pubs := float64(2 * memResources)

	b.ResetTimer()
	var comp *compositor.Compositor
	for i := range b.N {
		if i%memResources == 0 { // every resource loaded: start afresh
			b.StopTimer()
			if comp != nil {
				comp.Close()
			}
			if comp, err = compositor.New(ctx, compositor.Config{Store: s}); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
		}
		if v := comp.View(memRes(i%memResources), "dialog"); len(v.Dialogs) != 1 {
			b.Fatalf("view of %s: %+v", memRes(i%memResources), v.Dialogs)
		}
	}
	b.StopTimer()
	if comp != nil {
		comp.Close()
	}
	b.ReportMetric(max(float64(started)-float64(base), 0)/pubs, "B/stored-pub")
	b.ReportMetric((float64(loaded)-float64(started))/pubs, "B/loaded-pub")
}

package notifier

import (
	"strconv"

	"syscall"
	"testing"
	"time"

	"github.com/presencehub/presencehub/compositor"
)

// cpuTime is the process's user+system CPU time. The machine running the
// benchmarks is often shared, so wall-clock ns/op is noisy; cpu-ns/op (all
// goroutines and the kernel included) is what one op costs.
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
	}
}

// BenchmarkFanOut_5Sockets is the load generator's topology in small: 5
// subscriber sockets, each with one dialog subscription to each of 100
// resources, so every state change yields 5 NOTIFYs on 5 different flows.
// One op is one change of the next resource fanned out and its 5 NOTIFYs
// answered 200 the way the hub's dispatch does (flow.HandleAnswer with
// the branch found without a parse). allocs/op over 5 is the cost of one
// NOTIFY (the body's rendering is shared and counted once per op).
func BenchmarkFanOut_5Sockets(b *testing.B) {
	t := newSocketsTopology(b, 5, 100)
	sent := 0
	b.ReportAllocs()
	defer reportCPU(b)()
	for i := 0; b.Loop(); i++ {
		sent += t.change(i)
	}
	if sent != b.N*t.sockets {
		b.Fatalf("%d NOTIFYs for %d changes × %d sockets", sent, b.N, t.sockets)
	}
	b.ReportMetric(float64(sent)/float64(b.N), "NOTIFYs/op")
}

// socketsTopology: sockets flows, each subscribed once to each of
// resources resources, whose state changes in turn.
type socketsTopology struct {
	h                  *benchHub
	sockets, resources int
	views              []compositor.View
}

func newSocketsTopology(tb testing.TB, sockets, resources int) *socketsTopology {
	// The compositor hands the notifier a view already rendered once; so
	// that the figures are the notifier's alone, the bodies of two states
	// per resource are rendered beforehand: change i is state
	// (i/resources)%2 of resource i%resources, and has revision
	// 2*resources+i+1 (the revisions up to 2*resources are the first
	// NOTIFYs').
	t := &socketsTopology{sockets: sockets, resources: resources, views: make([]compositor.View, 2*resources)}
	bodies := make([]Body, 2*resources)
	for j := range t.views {
		t.views[j] = benchView("sip:"+strconv.Itoa(1000+j%resources)+"@"+benchDomain, j/resources)
		bodies[j], _ = benchRender(t.views[j], "")
	}
	t.h = newBenchHub(tb, func(c *Config) {
		c.Providers = &Registry{}
		if err := c.Providers.Register(Provider{Name: "dialog-info", Event: compositor.EventDialog, ContentType: "application/dialog-info+xml",
			Render: func(v compositor.View, _ string) (Body, error) {
				if v.Rev <= uint64(2*resources) {
					return benchRender(v, "")
				}
				return bodies[t.index(int(v.Rev)-2*resources-1)], nil
			}}); err != nil {
			tb.Fatal(err)
		}
	})
	h := t.h
	for range sockets {
		id := h.identity(tb, "attendant")
		f := newBenchFlow(id)
		h.flows = append(h.flows, f)
		for r := range resources {
			res := strconv.Itoa(1000 + r)
			req := subscribeRequest(tb, "attendant", res, "s"+strconv.Itoa(len(h.flows))+"-"+res)
			if code := h.n.HandleSubscribe(req, f.fl, id); code != 200 {
				tb.Fatalf("SUBSCRIBE answered %d", code)
			}
		}
	}
	h.answerAll()
	return t
}

func (t *socketsTopology) index(i int) int { return (i/t.resources)%2*t.resources + i%t.resources }

// change fans change number i out and answers its NOTIFYs; it returns how
// many there were.
func (t *socketsTopology) change(i int) int {
	v := t.views[t.index(i)]
	v.Rev = uint64(2*t.resources + i + 1)
	t.h.n.fanOut(v)
	return t.h.answerAll()
}

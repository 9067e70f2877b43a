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
	const sockets, resources = 5, 100
	// The compositor hands the notifier a view already rendered once; so
	// that the benchmark counts the notifier alone, the bodies of two
	// states per resource are rendered beforehand and change i is state
	// (i/resources)%2 of resource i%resources.
	views := make([]compositor.View, 2*resources)
	bodies := make([]Body, 2*resources)
	for j := range views {
		views[j] = benchView("sip:"+strconv.Itoa(1000+j%resources)+"@"+benchDomain, j/resources)
		bodies[j], _ = benchRender(views[j], "")
	}
	index := func(i int) int { return (i/resources)%2*resources + i%resources }
	h := newBenchHub(b, func(c *Config) {
		c.Providers = &Registry{}
		if err := c.Providers.Register(Provider{Name: "dialog-info", Event: compositor.EventDialog, ContentType: "application/dialog-info+xml",
			Render: func(v compositor.View, _ string) (Body, error) {
				if v.Rev <= 2*resources { // the first NOTIFY of each subscription
					return benchRender(v, "")
				}
				return bodies[index(int(v.Rev)-2*resources-1)], nil
			}}); err != nil {
			b.Fatal(err)
		}
	})
	for range sockets {
		id := h.identity(b, "attendant")
		f := newBenchFlow(id)
		h.flows = append(h.flows, f)
		for r := range resources {
			res := strconv.Itoa(1000 + r)
			req := subscribeRequest(b, "attendant", res, "s"+strconv.Itoa(len(h.flows))+"-"+res)
			if code := h.n.HandleSubscribe(req, f.fl, id); code != 200 {
				b.Fatalf("SUBSCRIBE answered %d", code)
			}
		}
	}
	answerScanned(h)
	sent := 0
	b.ReportAllocs()
	defer reportCPU(b)()
	for i := 0; b.Loop(); i++ {
		v := views[index(i)]
		v.Rev = uint64(2*resources + i + 1)
		h.n.fanOut(v)
		sent += answerScanned(h)
	}
	if sent != b.N*sockets {
		b.Fatalf("%d NOTIFYs for %d changes × %d sockets", sent, b.N, sockets)
	}
	b.ReportMetric(float64(sent)/float64(b.N), "NOTIFYs/op")
}

// answerScanned answers every NOTIFY sent so far with 200 through
// flow.HandleAnswer, the hub's path for a scanned answer.
func answerScanned(h *benchHub) int {
	n := 0
	for _, f := range h.flows {
		n += answer(f, 200)
	}
	return n
}

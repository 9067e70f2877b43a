package notifier

import (
	"fmt"
	"runtime"
	"strconv"
	"testing"
)

// BenchmarkMemoryPerSubscription states the notifier's live heap per held
// dialog subscription (bytes/subscription): N JsSIP-like SUBSCRIBEs, each
// parsed afresh as the server does, from one watcher on one flow, every
// first NOTIFY answered, then a full GC: to 1,000 resources (one watcher
// each) and to 50 (20 each, as `presencehub bench -idle` spreads them). It counts the
// subscription record, its indexes, its timer and its last NOTIFY body;
// the compositor's views are not part of it.
//
//	go test -run '^$' -bench MemoryPerSubscription ./server/notifier/
func BenchmarkMemoryPerSubscription(b *testing.B) {
	for _, resources := range []int{1000, 50} {
		b.Run(fmt.Sprintf("resources=%d", resources), func(b *testing.B) { memoryPerSubscription(b, resources) })
	}
}

func memoryPerSubscription(b *testing.B, resources int) {
	const subs = 1000
	var perSub float64
	for range b.N {
		b.StopTimer()
		h := newBenchHub(b)
		id := h.identity(b, "attendant")
		f := newBenchFlow(id)
		h.flows = append(h.flows, f)
		before := liveHeap()
		b.StartTimer()
		for i := range subs {
			if code := h.n.HandleSubscribe(subscribeRequest(b, "attendant", strconv.Itoa(1000+i%resources), "mem-"+strconv.Itoa(i)), f.fl, id); code != 200 {
				b.Fatalf("SUBSCRIBE answered %d", code)
			}
		}
		b.StopTimer()
		h.answerAll()
		after := liveHeap()
		perSub = float64(after-before) / subs
		runtime.KeepAlive(h)
		runtime.KeepAlive(f)
	}
	b.ReportMetric(perSub, "bytes/subscription")
}

func liveHeap() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

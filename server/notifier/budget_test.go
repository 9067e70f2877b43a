package notifier

import (
	"testing"
)

// raceEnabled is set under the race detector, which changes allocation
// counts.
var raceEnabled bool

// budgetNotify is the heap allocations per NOTIFY of a state change fanned
// out to its watchers, its answer included. The NOTIFY's bytes come from
// the memory of NOTIFYs already written (the test's connection hands them
// back at once, as wsproto's writer does once it has copied them); what is
// left is the body's rendering, once per change, shared by the change's
// NOTIFYs. (11.3 per NOTIFY before the transaction became a map entry
// swept by one timer per flow, the answer callback the subscription
// itself, the branch a value; 1.2 before the NOTIFY's memory was reused.)
const budgetNotify = 0.5

func TestAllocationBudget_PerNotify(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts differ under the race detector")
	}
	tests := []struct {
		name               string
		sockets, resources int
	}{
		{"one change to 100 watchers on one socket", 1, 0},
		{"changes to 5 watchers each on 5 sockets, as the load generator", 5, 100},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var change func(i int) int
			want := tt.sockets
			if tt.resources == 0 {
				const watchers = 100
				h := newBenchHub(t)
				h.watch(t, "1001", watchers)
				want = watchers
				change = func(i int) int {
					h.n.fanOut(benchView("sip:1001@"+benchDomain, i+1))
					return h.answerAll()
				}
			} else {
				change = newSocketsTopology(t, tt.sockets, tt.resources).change
			}
			i := 0
			run := func() {
				if sent := change(i); sent != want {
					t.Fatalf("%d NOTIFYs for %d watchers", sent, want)
				}
				i++
			}
			run()
			perNotify := testing.AllocsPerRun(200, run) / float64(want)
			t.Logf("%.2f allocations per NOTIFY (budget %.1f)", perNotify, budgetNotify)
			if perNotify > budgetNotify {
				t.Fatalf("%.2f allocations per NOTIFY, budget %.1f", perNotify, budgetNotify)
			}
		})
	}
}

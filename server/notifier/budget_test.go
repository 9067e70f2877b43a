package notifier

import (
	"testing"
)

// raceEnabled is set under the race detector, which changes allocation
// counts.
var raceEnabled bool

// budgetNotify is the heap allocations per NOTIFY of a state change fanned
// out to many watchers: the NOTIFY's bytes, its transaction, the flow's
// answer (the test's fake flow included). The body is rendered once per
// change, not per NOTIFY.
const budgetNotify = 12

func TestAllocationBudget_PerNotify(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts differ under the race detector")
	}
	const watchers = 100
	h := newBenchHub(t)
	h.watch(t, "1001", watchers)
	i := 0
	change := func() {
		i++
		h.n.fanOut(benchView("sip:1001@"+benchDomain, i))
		if sent := h.answerAll(); sent != watchers {
			t.Fatalf("%d NOTIFYs for %d watchers", sent, watchers)
		}
	}
	change()
	perNotify := testing.AllocsPerRun(50, change) / watchers
	t.Logf("%.1f allocations per NOTIFY (budget %d)", perNotify, budgetNotify)
	if perNotify > budgetNotify {
		t.Fatalf("%.1f allocations per NOTIFY, budget %d", perNotify, budgetNotify)
	}
}

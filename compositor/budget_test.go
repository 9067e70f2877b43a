package compositor

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/presencehub/presencehub/compositor/store/memstore"
	"github.com/presencehub/presencehub/compositor/store/storetest"
)

// raceEnabled is set under the race detector, which changes allocation
// counts (sync.Pool drops items at random).
var raceEnabled bool

// Allocation budgets of Publish, memory store (parse, bookkeeping, store,
// composition, one rendering), with a margin of 2 for the map growth a run
// may hit. Before the scanners and the incremental composition a dialog
// modify took 105, a PIDF modify 63. Since the bookkeeping is handed to the
// cache instead of decoded again, the memory store keeps the bytes it is
// given, the stamps are a slice and PIDF is scanned without a tree, the
// shapes below take: a dialog modify 8 (22 before), a call that ends,
// leaving a tombstone, 13 (46), a PIDF modify 9 (23).
// BenchmarkPublish_Modify has the same shapes.
const (
	budgetPublishDialog   = 10
	budgetPublishCallEnds = 15
	budgetPublishPresence = 11
)

func TestAllocationBudget_Publish(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts differ under the race detector")
	}
	dialog := func(id, state string) string {
		return `<?xml version="1.0"?><dialog-info xmlns="urn:ietf:params:xml:ns:dialog-info" version="0" state="full" entity="` + res + `"><dialog id="` + id + `" call-id="c1" direction="recipient"><state>` + state + `</state><local><identity>` + res + `</identity><target uri="sip:1001@10.0.0.1;seq=1"/></local><remote><identity>sip:2001@hub.test</identity></remote></dialog></dialog-info>`
	}
	for _, tc := range []struct {
		name, event, ct string
		bodies          func(i int) string
		budget          int
	}{
		{"dialog", EventDialog, ContentTypeDialogInfo, func(i int) string {
			return dialog("d1", [2]string{"early", "confirmed"}[i%2])
		}, budgetPublishDialog},
		{"call ends", EventDialog, ContentTypeDialogInfo, func(i int) string {
			// Each call confirmed, then terminated; the next has a new id.
			return dialog(fmt.Sprint("call-", i/2), [2]string{"confirmed", "terminated"}[i%2])
		}, budgetPublishCallEnds},
		{"presence", EventPresence, ContentTypePIDF, func(i int) string {
			return `<?xml version="1.0" encoding="UTF-8"?><presence xmlns="urn:ietf:params:xml:ns:pidf" entity="` + res + `"><tuple id="t1"><status><basic>` + [2]string{"open", "closed"}[i%2] + `</basic></status></tuple></presence>`
		}, budgetPublishPresence},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk := storetest.NewClock(time.Date(2030, 5, 6, 7, 8, 9, 0, time.UTC))
			c, err := New(context.Background(), Config{Store: memstore.New(memstore.Options{Now: clk.Now}), Now: clk.Now})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			const runs = 200
			bodies := make([][]byte, runs+2)
			for i := range bodies {
				bodies[i] = []byte(tc.bodies(i))
			}
			r := PublishRequest{Resource: res, Event: tc.event, Expires: 3600, ContentType: tc.ct, Body: bodies[0], Publisher: "p"}
			out, err := c.Publish(context.Background(), r)
			if err != nil {
				t.Fatal(err)
			}
			i := 0
			ifMatch := make([]string, 1)
			allocs := testing.AllocsPerRun(runs, func() {
				i++
				clk.Advance(20 * time.Second) // a call every 40 s: tombstones come and go
				ifMatch[0] = out.ETag
				r.IfMatch, r.Body = ifMatch, bodies[i]
				if out, err = c.Publish(context.Background(), r); err != nil {
					t.Fatal(err)
				}
			})
			t.Logf("%s PUBLISH: %.0f allocations (budget %d)", tc.name, allocs, tc.budget)
			if allocs > float64(tc.budget) {
				t.Fatalf("%s PUBLISH allocates %.0f times, budget %d", tc.name, allocs, tc.budget)
			}
		})
	}
}

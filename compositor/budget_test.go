package compositor

import (
	"context"
	"testing"
	"time"

	"github.com/presencehub/presencehub/compositor/store/memstore"
	"github.com/presencehub/presencehub/compositor/store/storetest"
)

// raceEnabled is set under the race detector, which changes allocation
// counts (sync.Pool drops items at random).
var raceEnabled bool

// Allocation budgets of Publish, memory store (parse, bookkeeping, store,
// composition, one rendering). Before the scanner and the incremental
// composition a dialog modify took 105, a PIDF modify 63; now 14 and 24
// (budgets with a margin of 2 for the map growth a run may hit).
const (
	budgetPublishDialog   = 16
	budgetPublishPresence = 26
)

func TestAllocationBudget_Publish(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts differ under the race detector")
	}
	for _, tc := range []struct {
		event, ct string
		bodies    [2]string
		budget    int
	}{
		{EventDialog, ContentTypeDialogInfo, [2]string{
			`<?xml version="1.0"?><dialog-info xmlns="urn:ietf:params:xml:ns:dialog-info" version="0" state="full" entity="` + res + `"><dialog id="d1" call-id="c1" direction="recipient"><state>early</state><local><identity>` + res + `</identity><target uri="sip:1001@10.0.0.1;seq=1"/></local><remote><identity>sip:2001@hub.test</identity></remote></dialog></dialog-info>`,
			`<?xml version="1.0"?><dialog-info xmlns="urn:ietf:params:xml:ns:dialog-info" version="0" state="full" entity="` + res + `"><dialog id="d1" call-id="c1" direction="recipient"><state>confirmed</state><local><identity>` + res + `</identity><target uri="sip:1001@10.0.0.1;seq=2"/></local><remote><identity>sip:2001@hub.test</identity></remote></dialog></dialog-info>`,
		}, budgetPublishDialog},
		{EventPresence, ContentTypePIDF, [2]string{
			`<?xml version="1.0" encoding="UTF-8"?><presence xmlns="urn:ietf:params:xml:ns:pidf" entity="` + res + `"><tuple id="t1"><status><basic>open</basic></status></tuple></presence>`,
			`<?xml version="1.0" encoding="UTF-8"?><presence xmlns="urn:ietf:params:xml:ns:pidf" entity="` + res + `"><tuple id="t1"><status><basic>closed</basic></status></tuple></presence>`,
		}, budgetPublishPresence},
	} {
		t.Run(tc.event, func(t *testing.T) {
			clk := storetest.NewClock(time.Date(2030, 5, 6, 7, 8, 9, 0, time.UTC))
			c, err := New(context.Background(), Config{Store: memstore.New(memstore.Options{Now: clk.Now}), Now: clk.Now})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			bodies := [2][]byte{[]byte(tc.bodies[0]), []byte(tc.bodies[1])}
			r := PublishRequest{Resource: res, Event: tc.event, Expires: 3600, ContentType: tc.ct, Body: bodies[0], Publisher: "p"}
			out, err := c.Publish(context.Background(), r)
			if err != nil {
				t.Fatal(err)
			}
			i := 0
			allocs := testing.AllocsPerRun(200, func() {
				i++
				r.IfMatch, r.Body = []string{out.ETag}, bodies[i%2]
				if out, err = c.Publish(context.Background(), r); err != nil {
					t.Fatal(err)
				}
			})
			t.Logf("%s PUBLISH: %.0f allocations (budget %d)", tc.event, allocs, tc.budget)
			if allocs > float64(tc.budget) {
				t.Fatalf("%s PUBLISH allocates %.0f times, budget %d", tc.event, allocs, tc.budget)
			}
		})
	}
}

package compositor_test

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/presencehub/presencehub/compositor"
	"github.com/presencehub/presencehub/compositor/store/memstore"
	"github.com/presencehub/presencehub/compositor/store/storetest"
)

// benchDialogBody is the dialog-info body of `presencehub bench`'s
// publishers (internal/loadgen), about 450 bytes: one dialog whose local
// target carries a sequence number, so every body differs.
func benchDialogBody(resource, id, state string, seq int) []byte {
	b := make([]byte, 0, 512)
	b = append(b, `<?xml version="1.0" encoding="UTF-8"?>`+"\n"+`<dialog-info xmlns="urn:ietf:params:xml:ns:dialog-info" version="0" state="full" entity="`...)
	b = append(b, resource...)
	b = append(b, `">`+"\n"+`<dialog id="`...)
	b = append(b, id...)
	b = append(b, `" call-id="`...)
	b = append(b, id...)
	b = append(b, `@pbx.invalid" local-tag="lt-`...)
	b = append(b, id...)
	b = append(b, `" direction="recipient"><state>`...)
	b = append(b, state...)
	b = append(b, `</state><local><identity>`...)
	b = append(b, resource...)
	b = append(b, `</identity><target uri="`...)
	b = append(b, resource...)
	b = append(b, `;ts=1733218867250000000;seq=`...)
	b = strconv.AppendInt(b, int64(seq), 10)
	b = append(b, `"/></local><remote><identity display="Reception">sip:2002@hub.test</identity></remote></dialog>`+"\n</dialog-info>\n"...)
	return b
}

// BenchmarkPublish_Modify is the PUBLISH of `presencehub bench` on the
// memory store, where the compositor's own work is what a PUBLISH costs:
// 1,000 resources, one dialog publication each (~450 B), every op a
// modify with SIP-If-Match, a Subscribe listener as in the server (the feed
// goroutine's CPU is in cpu-ns/op). The clock moves 30 ms per op, so each
// resource is modified every 30 s (tombstones and expiry as in a PBX's
// day, not a burst).
//
//   - early-confirmed: one dialog per resource alternating early and
//     confirmed, as the load generator publishes.
//   - confirmed-terminated: calls; each call is confirmed, then
//     terminated (a tombstone), the next call has a new dialog id.
//   - presence: a PIDF tuple alternating open and closed.
func BenchmarkPublish_Modify(b *testing.B) {
	for _, kind := range []string{"early-confirmed", "confirmed-terminated", "presence"} {
		b.Run(kind, func(b *testing.B) {
			const n = 1000
			ctx := context.Background()
			clk := storetest.NewClock(time.Date(2030, 5, 6, 7, 8, 9, 0, time.UTC))
			s := memstore.New(memstore.Options{Now: clk.Now})
			c, err := compositor.New(ctx, compositor.Config{Store: s, Now: clk.Now})
			if err != nil {
				b.Fatal(err)
			}
			c.Subscribe(func(compositor.Change) {}) // a listener, as in the server
			b.Cleanup(func() { c.Close(); s.Close() })
			body := func(res string, i, seq int) ([]byte, string, string) {
				switch kind {
				case "early-confirmed":
					return benchDialogBody(res, "d-"+strconv.Itoa(i), [2]string{"early", "confirmed"}[seq%2], seq), "dialog", compositor.ContentTypeDialogInfo
				case "confirmed-terminated":
					id := fmt.Sprintf("call-%d-%d", i, seq/2)
					return benchDialogBody(res, id, [2]string{"confirmed", "terminated"}[seq%2], seq), "dialog", compositor.ContentTypeDialogInfo
				}
				return pidfBody(res, "t1="+[2]string{"open", "closed"}[seq%2]), "presence", compositor.ContentTypePIDF
			}
			// Bodies are made before the timer: two cycles' worth per
			// resource, reused round-robin (the ids of confirmed-
			// terminated repeat only after their tombstones ended).
			const cycles = 8
			reqs := make([]compositor.PublishRequest, n)
			bodies := make([][cycles][]byte, n)
			tags := make([]string, n)
			for i := range n {
				res := fmt.Sprintf("sip:%d@hub.test", 1000+i)
				for seq := range cycles {
					bodies[i][seq], _, _ = body(res, i, seq)
				}
				first, event, ct := body(res, i, 1)
				reqs[i] = compositor.PublishRequest{Resource: res, Event: event, Expires: 3600, ContentType: ct, Body: first, Publisher: "pbx"}
				r, err := c.Publish(ctx, reqs[i])
				if err != nil {
					b.Fatal(err)
				}
				tags[i] = r.ETag
			}
			b.ReportAllocs()
			b.ResetTimer()
			done := reportPublish(b)
			for i := 0; i < b.N; i++ {
				j := i % n
				r := reqs[j]
				r.IfMatch = []string{tags[j]}
				r.Body = bodies[j][(i/n)%cycles]
				clk.Advance(30 * time.Millisecond)
				res, err := c.Publish(ctx, r)
				if err != nil {
					b.Fatal(err)
				}
				tags[j] = res.ETag
			}
			done()
		})
	}
}

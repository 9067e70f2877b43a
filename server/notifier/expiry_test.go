package notifier

import (
	"testing"
	"time"
)

// Subscriptions share one expiry timer: each ends with
// terminated;reason=timeout at its own deadline, in deadline order; a
// refresh moves its deadline; one ended otherwise leaves the queue.
func TestExpiry_EachSubscriptionEndsAtItsOwnDeadline(t *testing.T) {
	h := newTestHub(t)
	type sub struct {
		callID, expires string
		f               *benchFlow
		s               *subscription
	}
	subs := []*sub{{callID: "early", expires: "1"}, {callID: "refreshed", expires: "1"}, {callID: "ended", expires: "1"}, {callID: "late", expires: "2"}}
	start := time.Now()
	for _, x := range subs {
		x.f = h.lampFlow()
		req, s := h.subscribe(t, x.f, x.callID, x.expires)
		x.s = s
		notifies(t, x.f)
		answer(x.f, 200)
		if x.callID == "refreshed" {
			if code := h.refresh(t, x.f, req, s, "3"); code != 200 {
				t.Fatalf("refresh answered %d", code)
			}
			notifies(t, x.f)
			answer(x.f, 200)
		}
	}
	if !h.n.End(subs[2].s.id(), ReasonRejected) {
		t.Fatal("End found no subscription")
	}
	ended := func(x *sub) bool {
		x.s.mu.Lock()
		defer x.s.mu.Unlock()
		return x.s.final
	}
	waitUntil(t, "the first expiry", func() bool { return ended(subs[0]) })
	if ended(subs[1]) || ended(subs[3]) {
		t.Fatal("a later deadline ended with the first")
	}
	waitUntil(t, "the second expiry", func() bool { return ended(subs[3]) })
	if elapsed := time.Since(start); elapsed < 2*time.Second {
		t.Fatalf("Expires: 2 ended after %v", elapsed)
	}
	if ended(subs[1]) {
		t.Fatal("the refreshed subscription ended at its old deadline")
	}
	waitUntil(t, "the refreshed expiry", func() bool { return ended(subs[1]) })
	for _, x := range subs {
		got := notifies(t, x.f)
		want := "terminated;reason=timeout"
		if x.callID == "ended" {
			want = "terminated;reason=rejected"
		}
		if len(got) != 1 || got[0].state != want {
			t.Errorf("%s: NOTIFYs %+v, want one %q", x.callID, got, want)
		}
	}
	h.n.expiry.mu.Lock()
	defer h.n.expiry.mu.Unlock()
	if len(h.n.expiry.h) != 0 {
		t.Errorf("%d subscriptions left in the expiry queue", len(h.n.expiry.h))
	}
}

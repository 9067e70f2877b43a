package interop

import (
	"testing"
	"time"

	"github.com/presencehub/presencehub/compositor"
	"github.com/presencehub/presencehub/compositor/dialoginfo"
	"github.com/presencehub/presencehub/compositor/pidf"
	"github.com/presencehub/presencehub/server/servertest"
)

// SIP.js's Publisher (a new Call-ID and CSeq 1 on every PUBLISH; only SIP-If-Match links them)
// publishes dialog state, refreshes it by itself before the short grant runs out, modifies it,
// publishes presence beside it, and unpublishes — RFC 3903 §6 seen from a real client.
func TestPublish_SIPjsPublisher_PublishRefreshModifyUnpublish(t *testing.T) {
	t.Parallel()
	h := startHub(t)
	const user = "1002"
	aor := servertest.AOR(user)
	comp := h.Server.Compositor()
	c := StartWith(t, Options{Name: "SIP.js Publisher"}, "sipjs-publish.mjs",
		clientArgs(h, user, "--expires", "3600")...)
	c.ExpectEv("ready", startup)

	// Initial: a body, no SIP-If-Match.
	c.Send("publish", map[string]any{"event": "dialog", "state": "early", "id": "call-1", "direction": "recipient", "remote": "sip:1003@hub.test"})
	initial := c.ExpectEv("publishResponse", short)
	if initial.Kind != "initial" || initial.Status != 200 || initial.ETag == "" {
		t.Fatalf("initial PUBLISH: %s, want 200 with a SIP-ETag", initial.Line)
	}
	if initial.Expires != int(publishGrant/time.Second) {
		t.Errorf("initial PUBLISH asked 3600 s: Expires %d, want the maximum %d", initial.Expires, int(publishGrant/time.Second))
	}
	published := time.Now()
	wantDialog(t, comp, aor, dialoginfo.Early)

	// Refresh: SIP.js sends it by itself at 90 % of the grant, with SIP-If-Match and no body.
	refresh := c.ExpectEv("publishResponse", publishGrant+short)
	if refresh.Kind != "refresh" || refresh.Status != 200 {
		t.Fatalf("refresh PUBLISH: %s, want 200", refresh.Line)
	}
	if refresh.ETag == "" || refresh.ETag == initial.ETag {
		t.Errorf("refresh answered SIP-ETag %q after %q: want a new one (RFC 3903 §6 step 6)", refresh.ETag, initial.ETag)
	}
	reqs := c.Seen(sipOut("PUBLISH"))
	if last := reqs[len(reqs)-1]; last.IfMatch != initial.ETag || last.ContentType != "" {
		t.Errorf("SIP.js refresh sent SIP-If-Match %q content-type %q; want %q and no body", last.IfMatch, last.ContentType, initial.ETag)
	}
	// Past the first grant: only the refresh keeps the state.
	time.Sleep(time.Until(published.Add(publishGrant + 500*time.Millisecond)))
	wantDialog(t, comp, aor, dialoginfo.Early)

	// Modify: SIP-If-Match with a body.
	c.Send("publish", map[string]any{"event": "dialog", "state": "confirmed", "id": "call-1", "direction": "recipient", "remote": "sip:1003@hub.test"})
	modify := c.ExpectEv("publishResponse", short)
	if modify.Kind != "modify" || modify.Status != 200 || modify.ETag == "" || modify.ETag == refresh.ETag {
		t.Fatalf("modify PUBLISH: %s, want 200 with a new SIP-ETag", modify.Line)
	}
	reqs = c.Seen(sipOut("PUBLISH"))
	if last := reqs[len(reqs)-1]; last.IfMatch != refresh.ETag {
		t.Errorf("modify sent SIP-If-Match %q, want the refresh's %q", last.IfMatch, refresh.ETag)
	}
	wantDialog(t, comp, aor, dialoginfo.Confirmed)

	// Presence beside it: a second Publisher, its own entity-tag.
	c.Send("publish", map[string]any{"event": "presence", "basic": "open", "note": "On the phone"})
	pres := c.ExpectEv("publishResponse", short)
	if pres.Kind != "initial" || pres.Event != "presence" || pres.Status != 200 {
		t.Fatalf("presence PUBLISH: %s, want 200", pres.Line)
	}
	if v := comp.View(aor, compositor.EventPresence); v.Presence == nil || len(v.Presence.Tuples) == 0 || v.Presence.Tuples[0].Basic != pidf.Open {
		t.Errorf("presence view after PUBLISH open: %+v", v.Presence)
	}

	// Unpublish: Expires 0 removes the dialog publication; presence stays.
	c.Send("unpublish", map[string]any{"event": "dialog"})
	remove := c.ExpectEv("publishResponse", short)
	if remove.Kind != "remove" || remove.Status != 200 || remove.Expires != 0 || !remove.Has("expires") {
		t.Fatalf("unpublish: %s, want 200 with Expires 0", remove.Line)
	}
	c.Expect("Unpublished", short, func(e Event) bool { return e.Ev == "publisherState" && e.State == "Unpublished" })
	if v := comp.View(aor, compositor.EventDialog); len(v.Dialogs) != 0 {
		t.Errorf("dialog view after unpublish: %+v, want no dialogs", v.Dialogs)
	}
	if v := comp.View(aor, compositor.EventPresence); v.Presence == nil || len(v.Presence.Tuples) == 0 || v.Presence.Tuples[0].Basic != pidf.Open {
		t.Errorf("presence view after unpublishing dialog: %+v, want still open", v.Presence)
	}

	for _, e := range c.Seen(ev("publishResponse")) {
		if e.Status != 200 {
			t.Errorf("PUBLISH answered %d: %s", e.Status, e.Line)
		}
	}
	c.Send("quit", nil)
	if code := c.Wait(short); code != ExitOK {
		t.Errorf("exit code %d, want 0", code)
	}
}

func wantDialog(t *testing.T, comp *compositor.Compositor, aor, state string) {
	t.Helper()
	// The view follows the store's change feed: give it a moment.
	deadline := time.Now().Add(2 * time.Second)
	for {
		v := comp.View(aor, compositor.EventDialog)
		if len(v.Dialogs) == 1 && v.Dialogs[0].State == state {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("dialog view of %s: %+v, want one dialog %s", aor, v.Dialogs, state)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

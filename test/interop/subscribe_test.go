package interop

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/presencehub/presencehub/server/servertest"
)

type watcher struct {
	name, script, user string
	extra              []string
	c                  *Client
}

func notifyState(states ...string) func(Event) bool {
	return func(e Event) bool { return e.Ev == "notify" && slices.Contains(states, e.State) }
}

// changeNotifies are the NOTIFYs a watcher got for state changes: all of them except the one
// the hub sends right after answering each refresh (RFC 6665 §4.2.1.2), which repeats the state.
func changeNotifies(c *Client) []Event {
	var out []Event
	afterRefresh := false
	for _, e := range c.Seen(nil) {
		switch {
		case e.Ev == "subscribeResponse" && e.Kind == "refresh" && e.Status == 200:
			afterRefresh = true
		case e.Ev == "notify" && afterRefresh:
			afterRefresh = false
		case e.Ev == "notify":
			out = append(out, e)
		}
	}
	return out
}

func states(es []Event) []string {
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = e.State
	}
	return out
}

// checkNotifies holds for every NOTIFY a watcher got: answered 200 by the library, CSeq rising
// within the dialog, dialog-info version 0, 1, 2, … (RFC 4235 §4.1), Subscription-State present.
func checkNotifies(t *testing.T, w *watcher, dialogInfo bool) {
	t.Helper()
	all := w.c.Seen(ev("notifyAnswered"))
	if len(all) == 0 {
		t.Errorf("%s: no NOTIFY at all", w.name)
		return
	}
	for i, n := range all {
		if n.Answer != 200 {
			t.Errorf("%s: the library answered NOTIFY CSeq %d with %d: %s", w.name, n.CSeq, n.Answer, n.Line)
		}
		if n.SubState == "" {
			t.Errorf("%s: NOTIFY CSeq %d without Subscription-State", w.name, n.CSeq)
		}
		if i > 0 && n.CSeq <= all[i-1].CSeq {
			t.Errorf("%s: NOTIFY CSeq %d after %d: must rise", w.name, n.CSeq, all[i-1].CSeq)
		}
		if dialogInfo && n.Version != i {
			t.Errorf("%s: NOTIFY #%d has dialog-info version %d, want %d", w.name, i, n.Version, i)
		}
	}
}

// The reason the hub exists: BLF watchers on real JsSIP and SIP.js follow an extension that a
// real SIP.js Publisher drives through idle → early → confirmed → terminated, with exactly one
// NOTIFY per change (the same state published twice gives none), refresh their subscriptions
// before the short grant runs out, still follow changes after it, and end cleanly on
// unsubscribe with a final NOTIFY.
func TestSubscribe_JsSIPAndSIPjs_FollowExtensionOneNotifyPerChange(t *testing.T) {
	t.Parallel()
	h := startHub(t)
	const watched = "1002"
	pub := StartWith(t, Options{Name: "SIP.js Publisher " + watched}, "sipjs-publish.mjs",
		clientArgs(h, watched, "--expires", "3600")...)
	dialogWatchers := []*watcher{
		{name: "JsSIP dialog watcher", script: "jssip-subscribe.mjs", user: "1001"},
		// SIP.js sends no Accept by default: the hub must default to dialog-info.
		{name: "SIP.js dialog watcher", script: "sipjs-subscribe.mjs", user: "1003"},
	}
	presence := &watcher{name: "SIP.js presence watcher", script: "sipjs-subscribe.mjs", user: "1004", extra: []string{"--event", "presence", "--accept"}}
	all := append(slices.Clone(dialogWatchers), presence)
	for _, w := range all {
		w.c = StartWith(t, Options{Name: w.name}, w.script,
			clientArgs(h, w.user, append([]string{"--target", watched, "--expires", "600"}, w.extra...)...)...)
	}
	pub.ExpectEv("ready", startup)
	for _, w := range dialogWatchers {
		first := w.c.Expect("initial NOTIFY idle", startup, ev("notify"))
		if first.State != "idle" || first.SubState != "active" || first.Entity != servertest.AOR(watched) {
			t.Fatalf("%s: initial NOTIFY %s, want idle, active, entity %s", w.name, first.Line, servertest.AOR(watched))
		}
		if r := w.c.Seen(ev("subscribeResponse")); len(r) != 1 || r[0].Status != 200 || r[0].Expires != int(subscribeGrant/time.Second) {
			t.Fatalf("%s: 200 to SUBSCRIBE asking 600 s: %+v, want Expires %d", w.name, r, int(subscribeGrant/time.Second))
		}
	}
	subscribed := time.Now()
	if e := presence.c.Expect("initial presence NOTIFY", startup, ev("notify")); e.State != "closed" {
		t.Fatalf("%s: initial NOTIFY %s, want basic closed (nothing published)", presence.name, e.Line)
	}

	// A call is a dialog id; a terminated one stays terminated (the hub keeps a tombstone), so
	// the next call has a new id.
	publish := func(call, state string) {
		t.Helper()
		pub.Send("publish", map[string]any{"event": "dialog", "state": state, "id": call, "direction": "recipient", "remote": "sip:1009@hub.test"})
		if r := pub.ExpectEv("publishResponse", short); r.Status != 200 {
			t.Fatalf("PUBLISH %s: %s", state, r.Line)
		}
	}
	steps := []struct {
		publish string
		want    []string // nil: no NOTIFY expected
	}{
		{"early", []string{"early"}},
		{"early", nil}, // RINGING twice: one NOTIFY
		{"confirmed", []string{"confirmed"}},
		{"terminated", []string{"idle", "terminated"}}, // a terminated dialog leaves the view
	}
	for _, s := range steps {
		publish("call-1", s.publish)
		for _, w := range dialogWatchers {
			if s.want != nil {
				w.c.Expect(fmt.Sprintf("NOTIFY %v", s.want), short, notifyState(s.want...))
			}
		}
	}
	for _, w := range dialogWatchers {
		// Anything still in flight shows up here; a refresh is seconds away.
		w.c.Quiet(300*time.Millisecond, nil)
		got := states(changeNotifies(w.c))
		if len(got) != 4 || got[0] != "idle" || got[1] != "early" || got[2] != "confirmed" || (got[3] != "idle" && got[3] != "terminated") {
			t.Errorf("%s: NOTIFY states %v, want [idle early confirmed idle]: one per change", w.name, got)
		}
	}

	// Presence beside dialog state.
	pub.Send("publish", map[string]any{"event": "presence", "basic": "open"})
	if r := pub.ExpectEv("publishResponse", short); r.Status != 200 {
		t.Fatalf("PUBLISH presence: %s", r.Line)
	}
	presence.c.Expect("presence NOTIFY open", short, notifyState("open"))

	// Each library refreshes by itself (JsSIP 5 s before expiry, SIP.js at 90 %); the hub
	// answers 200 and a NOTIFY with the current state.
	for _, w := range all {
		r := w.c.Expect("re-SUBSCRIBE", long, func(e Event) bool { return e.Ev == "subscribeResponse" && e.Kind == "refresh" })
		if r.Status != 200 {
			t.Fatalf("%s: refresh answered %d: %s", w.name, r.Status, r.Line)
		}
		w.c.Expect("NOTIFY after refresh", short, ev("notify"))
	}
	// Past the first grant: only the refreshes keep the subscriptions.
	time.Sleep(time.Until(subscribed.Add(subscribeGrant + 500*time.Millisecond)))
	publish("call-2", "early")
	for _, w := range dialogWatchers {
		w.c.Expect("NOTIFY early after the first grant ran out", short, notifyState("early"))
	}

	for _, w := range all {
		w.c.Send("unsubscribe", nil)
	}
	for _, w := range all {
		end := w.c.ExpectEv("terminated", short)
		if !end.Asked {
			t.Errorf("%s: subscription ended on its own: %s", w.name, end.Line)
		}
		final := w.c.Seen(func(e Event) bool { return e.Ev == "notifyAnswered" && e.SubState == "terminated" })
		if len(final) != 1 {
			t.Errorf("%s: %d final NOTIFYs, want 1", w.name, len(final))
		}
		if code := w.c.Wait(short); code != ExitOK {
			t.Errorf("%s: exit code %d, want 0", w.name, code)
		}
		checkNotifies(t, w, w != presence)
	}
	if subs := h.Server.Notifier().List(""); len(subs) != 0 {
		t.Errorf("hub still has %d subscriptions after every watcher unsubscribed: %+v", len(subs), subs)
	}
}

// JsSIP reconnects by itself when the hub's socket dies (~2 s), REGISTERs again and keeps using
// its old subscription dialog over the new connection: the hub rebinds the dialog, with CSeq
// still rising (JsSIP answers 500 to a lower one), and NOTIFYs follow on the new connection.
func TestSubscribe_JsSIPReconnect_KeepsDialogOverNewConnection(t *testing.T) {
	t.Parallel()
	h := startHub(t)
	proxy := startProxy(t, h.Addr)
	const watched = "1002"
	pub := StartWith(t, Options{Name: "SIP.js Publisher " + watched}, "sipjs-publish.mjs",
		clientArgs(h, watched, "--expires", "3600")...)
	w := &watcher{name: "JsSIP dialog watcher", script: "jssip-subscribe.mjs", user: "1001"}
	w.c = StartWith(t, Options{Name: w.name}, w.script,
		withToken(proxy.WS(), h.Token(w.user, nil), w.user, "--target", watched, "--expires", "600", "--register")...)

	if e := w.c.ExpectEv("registered", startup); e.Conn != 1 {
		t.Fatalf("registered on connection %d, want 1", e.Conn)
	}
	if e := w.c.Expect("initial NOTIFY", short, ev("notify")); e.State != "idle" {
		t.Fatalf("initial NOTIFY %s, want idle", e.Line)
	}
	pub.ExpectEv("ready", startup)
	pub.Send("publish", map[string]any{"event": "dialog", "state": "early", "id": "call-1"})
	pub.ExpectEv("publishResponse", short)
	w.c.Expect("NOTIFY early", short, notifyState("early"))

	proxy.Drop()
	w.c.Expect("connection 1 closed", short, func(e Event) bool { return e.Ev == "ws" && e.State == "closed" && e.Conn == 1 })
	// The call is answered while the watcher is away.
	pub.Send("publish", map[string]any{"event": "dialog", "state": "confirmed", "id": "call-1"})
	pub.ExpectEv("publishResponse", short)
	if e := w.c.ExpectEv("registered", long); e.Conn != 2 {
		t.Fatalf("registered again on connection %d, want 2", e.Conn)
	}
	// JsSIP's refresh timer would send this a few seconds later; the test doesn't wait for it.
	w.c.Send("refresh", nil)
	r := w.c.Expect("re-SUBSCRIBE on the new connection", short, func(e Event) bool { return e.Ev == "subscribeResponse" && e.Kind == "refresh" })
	if r.Status != 200 || r.Conn != 2 {
		t.Fatalf("re-SUBSCRIBE of the old dialog over connection 2: %s, want 200", r.Line)
	}
	if e := w.c.Expect("NOTIFY confirmed after re-SUBSCRIBE", short, notifyState("confirmed")); e.Conn != 2 {
		t.Errorf("NOTIFY confirmed on connection %d, want 2 (the rebound dialog)", e.Conn)
	}
	pub.Send("publish", map[string]any{"event": "dialog", "state": "terminated", "id": "call-1"})
	pub.ExpectEv("publishResponse", short)
	if e := w.c.Expect("NOTIFY idle", short, notifyState("idle", "terminated")); e.Conn != 2 {
		t.Errorf("NOTIFY idle on connection %d, want 2", e.Conn)
	}
	for _, e := range w.c.Seen(ev("notify")) {
		if e.Conn == 1 && e.State == "confirmed" {
			t.Errorf("NOTIFY on the dead connection: %s", e.Line)
		}
	}
	if subs := h.Server.Notifier().List(w.user); len(subs) != 1 || !subs[0].Attached {
		t.Errorf("hub subscriptions of %s after reconnect: %+v, want one, attached (no zombie)", w.user, subs)
	}

	w.c.Send("unsubscribe", nil)
	if e := w.c.ExpectEv("terminated", short); !e.Asked {
		t.Errorf("subscription ended on its own: %s", e.Line)
	}
	if code := w.c.Wait(short); code != ExitOK {
		t.Errorf("exit code %d, want 0", code)
	}
	checkNotifies(t, w, true)
	if subs := h.Server.Notifier().List(w.user); len(subs) != 0 {
		t.Errorf("hub still has subscriptions of %s after unsubscribe: %+v", w.user, subs)
	}
}

package server_test

import (
	"bytes"
	"context"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/presencehub/presencehub/compositor"
	"github.com/presencehub/presencehub/internal/sipclient"
	"github.com/presencehub/presencehub/internal/siprule"
	"github.com/presencehub/presencehub/server"
	"github.com/presencehub/presencehub/server/auth"
	"github.com/presencehub/presencehub/server/notifier"
	"github.com/presencehub/presencehub/server/servertest"
)

// publisher publishes dialog state of one extension with SIP-If-Match.
type publisher struct {
	t      *testing.T
	c      *sipclient.Client
	ext    string
	etag   string
	dialog string // dialog id of the current call
}

func newPublisher(t *testing.T, hub *servertest.Hub, ext string) *publisher {
	return &publisher{t: t, c: hub.Dial(testCtx(t), ext, sipclient.Options{}), ext: ext, dialog: "call1"}
}

func (p *publisher) state(state string) {
	p.t.Helper()
	hdrs := []string{"Event", "dialog", "Expires", "3600"}
	if p.etag != "" {
		hdrs = append(hdrs, "SIP-If-Match", p.etag)
	}
	req := withBody(newReq(p.t, p.c, sip.PUBLISH, p.ext, p.ext, hdrs...), "application/dialog-info+xml",
		dialogInfo(servertest.AOR(p.ext), p.dialog, state))
	res := do(p.t, p.c, req)
	if res.StatusCode != 200 {
		p.t.Fatalf("PUBLISH %s: %d %s", state, res.StatusCode, res.Reason)
	}
	p.etag = header(res, "SIP-ETag")
}

func subscribeReq(t *testing.T, c *sipclient.Client, as, ext, event string, hdrs ...string) *sip.Request {
	accept := map[string]string{"dialog": "application/dialog-info+xml", "presence": "application/pidf+xml"}[event]
	all := append([]string{"Event", event, "Expires", "600"}, hdrs...)
	if accept != "" && !hasHeader(hdrs, "Accept") {
		all = append(all, "Accept", accept)
	}
	return newReq(t, c, sip.SUBSCRIBE, as, ext, all...)
}

func hasHeader(hdrs []string, name string) bool {
	for i := 0; i < len(hdrs); i += 2 {
		if hdrs[i] == name {
			return true
		}
	}
	return false
}

var versionAttr = regexp.MustCompile(`version="(\d+)"`)

func version(t *testing.T, body []byte) int {
	m := versionAttr.FindSubmatch(body)
	if m == nil {
		t.Fatalf("no version in %s", body)
	}
	n, _ := strconv.Atoi(string(m[1]))
	return n
}

func TestSubscribe_Dialog_200ThenFullStateNotify(t *testing.T) {
	hub := servertest.Start(t, servertest.Options{})
	var mu sync.Mutex
	var order []string
	w, opts := newWatcher()
	opts.Trace = func(msg []byte) {
		mu.Lock()
		order = append(order, string(msg[:bytes.IndexByte(msg, '\r')]))
		mu.Unlock()
	}
	c := hub.Dial(testCtx(t), "2001", opts)
	req := subscribeReq(t, c, "2001", "1001", "dialog", "Event", "dialog;id=abc")
	req.RemoveHeader("Event")
	req.AppendHeader(sip.NewHeader("Event", "dialog;id=abc"))
	res := do(t, c, req)
	if res.StatusCode != 200 || header(res, "Contact") == "" || header(res, "Expires") != "600" {
		t.Fatalf("SUBSCRIBE: %d Contact %q Expires %q", res.StatusCode, header(res, "Contact"), header(res, "Expires"))
	}
	n := w.next(t)
	mu.Lock()
	if len(order) < 2 || !strings.HasPrefix(order[0], "SIP/2.0 200") || !strings.HasPrefix(order[1], "NOTIFY ") {
		t.Errorf("order on the wire = %q, want 200 then NOTIFY", order)
	}
	mu.Unlock()
	toTag, _ := res.To().Params.Get("tag")
	fromTag, _ := n.From().Params.Get("tag")
	checks := []struct{ what, got, want string }{
		{"Request-URI", n.Recipient.String(), req.Contact().Address.String()},
		{"From tag", fromTag, toTag},
		{"To", n.To().Value(), req.From().Value()},
		{"Call-ID", n.CallID().Value(), req.CallID().Value()},
		{"Event", header(n, "Event"), "dialog;id=abc"},
		{"Subscription-State", header(n, "Subscription-State")[:len("active;expires=")], "active;expires="},
		{"Content-Type", header(n, "Content-Type"), "application/dialog-info+xml"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %q, want %q", c.what, c.got, c.want)
		}
	}
	if header(n, "Contact") == "" {
		t.Error("NOTIFY has no Contact (SIP.js answers 489)")
	}
	body := string(n.Body())
	for _, want := range []string{`state="full"`, `entity="` + servertest.AOR("1001") + `"`, `version="0"`} {
		if !strings.Contains(body, want) {
			t.Errorf("body lacks %s: %s", want, body)
		}
	}
}

// idle → early → confirmed → terminated: one NOTIFY per real change,
// versions 0,1,2,3, CSeq rising; the same state twice sends nothing.
func TestSubscribe_Dialog_FollowsStateWithDedupe(t *testing.T) {
	hub := servertest.Start(t, servertest.Options{})
	w, opts := newWatcher()
	c := hub.Dial(testCtx(t), "2001", opts)
	if res := do(t, c, subscribeReq(t, c, "2001", "1001", "dialog")); res.StatusCode != 200 {
		t.Fatalf("SUBSCRIBE: %d", res.StatusCode)
	}
	first := w.next(t)
	if lamp(first.Body()) != "idle" {
		t.Fatalf("initial lamp %q", lamp(first.Body()))
	}
	pub := newPublisher(t, hub, "1001")
	lastCSeq := first.CSeq().SeqNo
	for i, st := range []string{"early", "early", "confirmed", "confirmed", "terminated"} {
		pub.state(st)
		if i > 0 && st == []string{"early", "early", "confirmed", "confirmed", "terminated"}[i-1] {
			w.none(t, 300*time.Millisecond)
			continue
		}
		n := w.next(t)
		want := st
		if st == "terminated" {
			want = "idle" // ended dialogs leave the composed view
		}
		if got := lamp(n.Body()); got != want {
			t.Fatalf("after %s: lamp %q", st, got)
		}
		if n.CSeq().SeqNo <= lastCSeq {
			t.Errorf("CSeq %d not above %d", n.CSeq().SeqNo, lastCSeq)
		}
		lastCSeq = n.CSeq().SeqNo
	}
	// Version counts NOTIFYs actually sent: 0 (idle), 1 early, 2 confirmed, 3 idle.
	pub.dialog = "call2" // a new call: the ended one's id stays terminated
	pub.state("early")
	n := w.next(t)
	if got := version(t, n.Body()); got != 4 {
		t.Errorf("version = %d, want 4", got)
	}
}

func TestSubscribe_RefreshUnsubscribeFetchAndExpiry(t *testing.T) {
	hub := servertest.Start(t, servertest.Options{Configure: func(c *server.Config) {
		c.SubscribeExpiry = map[string]siprule.ExpiryPolicy{"dialog": {Min: time.Second}}
	}})
	w, opts := newWatcher()
	c := hub.Dial(testCtx(t), "2001", opts)

	t.Run("refresh → 200 + NOTIFY; unsubscribe → final NOTIFY, then nothing", func(t *testing.T) {
		req := subscribeReq(t, c, "2001", "1001", "dialog")
		res := do(t, c, req)
		w.next(t)
		refresh := sipclient.InDialog(req, res)
		if r := do(t, c, refresh); r.StatusCode != 200 {
			t.Fatalf("refresh: %d", r.StatusCode)
		}
		if n := w.next(t); !strings.HasPrefix(header(n, "Subscription-State"), "active") {
			t.Fatalf("refresh NOTIFY: %q", header(n, "Subscription-State"))
		}
		unsub := sipclient.InDialog(refresh, res)
		unsub.ReplaceHeader(sip.NewHeader("Expires", "0"))
		if r := do(t, c, unsub); r.StatusCode != 200 {
			t.Fatalf("unsubscribe: %d", r.StatusCode)
		}
		n := w.next(t)
		if got := header(n, "Subscription-State"); got != "terminated;reason=timeout" {
			t.Fatalf("final NOTIFY state %q", got)
		}
		if len(n.Body()) == 0 {
			t.Error("final NOTIFY has no body (JsSIP ignores body-less NOTIFYs)")
		}
		newPublisher(t, hub, "1001").state("early")
		w.none(t, 300*time.Millisecond)
		again := sipclient.InDialog(unsub, res)
		if r := do(t, c, again); r.StatusCode != 481 {
			t.Fatalf("SUBSCRIBE in an ended dialog: %d, want 481", r.StatusCode)
		}
	})
	t.Run("fetch (Expires 0) → one NOTIFY with state, terminated", func(t *testing.T) {
		req := subscribeReq(t, c, "2001", "1002", "dialog")
		req.ReplaceHeader(sip.NewHeader("Expires", "0"))
		if res := do(t, c, req); res.StatusCode != 200 {
			t.Fatalf("fetch: %d", res.StatusCode)
		}
		n := w.next(t)
		if got := header(n, "Subscription-State"); got != "terminated;reason=timeout" || !strings.Contains(string(n.Body()), "dialog-info") {
			t.Fatalf("fetch NOTIFY %q %s", got, n.Body())
		}
		w.none(t, 200*time.Millisecond)
	})
	t.Run("expiry → terminated;reason=timeout", func(t *testing.T) {
		req := subscribeReq(t, c, "2001", "1003", "dialog")
		req.ReplaceHeader(sip.NewHeader("Expires", "1"))
		if res := do(t, c, req); res.StatusCode != 200 || header(res, "Expires") != "1" {
			t.Fatalf("SUBSCRIBE: %d %q", res.StatusCode, header(res, "Expires"))
		}
		w.next(t)
		if got := header(w.next(t), "Subscription-State"); got != "terminated;reason=timeout" {
			t.Fatalf("after expiry: %q", got)
		}
	})
}

func TestSubscribe_Errors(t *testing.T) {
	hub := servertest.Start(t, servertest.Options{})
	c := hub.Dial(testCtx(t), "2001", sipclient.Options{})
	lobby := hub.Dial(testCtx(t), "", sipclient.Options{Token: hub.Token("lobby", func(cl *auth.Claims) { cl.Subscribe = []string{"100"} })})
	tests := []struct {
		name   string
		client *sipclient.Client
		req    func() *sip.Request
		code   int
		header string
		want   string
	}{
		{"unknown event → 489", c, func() *sip.Request { return subscribeReq(t, c, "2001", "1001", "conference") }, 489, "Allow-Events", "dialog"},
		{"Accept without the package type → 406", c, func() *sip.Request {
			return subscribeReq(t, c, "2001", "1001", "dialog", "Accept", "text/plain")
		}, 406, "Accept", "application/dialog-info+xml"},
		{"too brief → 423", c, func() *sip.Request {
			r := subscribeReq(t, c, "2001", "1001", "dialog")
			r.ReplaceHeader(sip.NewHeader("Expires", "5"))
			return r
		}, 423, "Min-Expires", "60"},
		{"unknown dialog → 481", c, func() *sip.Request {
			r := subscribeReq(t, c, "2001", "1001", "dialog")
			r.To().Params.Add("tag", "nosuchtag")
			return r
		}, 481, "", ""},
		{"token may not watch → 403", lobby, func() *sip.Request { return subscribeReq(t, lobby, "lobby", "1001", "dialog") }, 403, "", ""},
		{"token may not watch, unknown AOR → same 403", lobby, func() *sip.Request { return subscribeReq(t, lobby, "lobby", "nobody", "dialog") }, 403, "", ""},
		{"other domain → 403", c, func() *sip.Request {
			r := subscribeReq(t, c, "2001", "1001", "dialog")
			r.Recipient.Host = "example.org"
			return r
		}, 403, "", ""},
		{"no Accept → package default", c, func() *sip.Request {
			r := subscribeReq(t, c, "2001", "1001", "dialog")
			r.RemoveHeader("Accept")
			return r
		}, 200, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := do(t, tt.client, tt.req())
			if res.StatusCode != tt.code {
				t.Fatalf("got %d %s, want %d", res.StatusCode, res.Reason, tt.code)
			}
			if tt.header != "" && !strings.Contains(header(res, tt.header), tt.want) {
				t.Errorf("%s = %q, want %q", tt.header, header(res, tt.header), tt.want)
			}
		})
	}
}

// A watcher that answers 481 or disappears loses only its own subscription.
func TestNotify_DeadWatcherAmongLiveOnes(t *testing.T) {
	hub := servertest.Start(t, servertest.Options{Configure: func(c *server.Config) { c.RebindGrace = 200 * time.Millisecond }})
	live, liveOpts := newWatcher()
	lc := hub.Dial(testCtx(t), "2001", liveOpts)
	var refuse sync.Once
	refusing := make(chan struct{})
	bad := hub.Dial(testCtx(t), "2002", sipclient.Options{OnRequest: func(r *sip.Request) int {
		if r.Method == sip.NOTIFY && lamp(r.Body()) == "early" {
			refuse.Do(func() { close(refusing) })
			return 481
		}
		return 200
	}})
	gone := hub.Dial(testCtx(t), "2003", sipclient.Options{})
	for _, x := range []struct {
		c  *sipclient.Client
		as string
	}{{lc, "2001"}, {bad, "2002"}, {gone, "2003"}} {
		if res := do(t, x.c, subscribeReq(t, x.c, x.as, "1001", "dialog")); res.StatusCode != 200 {
			t.Fatalf("SUBSCRIBE: %d", res.StatusCode)
		}
	}
	live.next(t)
	gone.Close()
	pub := newPublisher(t, hub, "1001")
	pub.state("early")
	if lamp(live.next(t).Body()) != "early" {
		t.Fatal("live watcher missed early")
	}
	<-refusing
	pub.state("confirmed")
	if lamp(live.next(t).Body()) != "confirmed" {
		t.Fatal("live watcher missed confirmed")
	}
	waitFor(t, "only the live subscription to remain", func() bool { return hub.Server.Notifier().Count()["dialog"] == 1 })
}

// JsSIP reconnects and keeps using its dialog over the new connection.
func TestSubscribe_ReconnectRebindsDialog(t *testing.T) {
	hub := servertest.Start(t, servertest.Options{})
	w1, o1 := newWatcher()
	c1 := hub.Dial(testCtx(t), "2001", o1)
	req := subscribeReq(t, c1, "2001", "1001", "dialog")
	res := do(t, c1, req)
	first := w1.next(t)
	c1.Close()
	newPublisher(t, hub, "1001").state("early") // happens while the watcher is away

	w2, o2 := newWatcher()
	c2 := hub.Dial(testCtx(t), "2001", o2)
	refresh := sipclient.InDialog(req, res)
	if r := do(t, c2, refresh); r.StatusCode != 200 {
		t.Fatalf("refresh on the new connection: %d", r.StatusCode)
	}
	n := w2.next(t)
	if lamp(n.Body()) != "early" || n.CSeq().SeqNo <= first.CSeq().SeqNo {
		t.Fatalf("after rebind: lamp %q CSeq %d (first %d)", lamp(n.Body()), n.CSeq().SeqNo, first.CSeq().SeqNo)
	}
	// Another identity cannot take the dialog over.
	c3 := hub.Dial(testCtx(t), "2999", sipclient.Options{})
	if r := do(t, c3, sipclient.InDialog(refresh, res)); r.StatusCode != 403 {
		t.Fatalf("foreign refresh: %d, want 403", r.StatusCode)
	}
}

// A reloaded page subscribes afresh: its old, detached dialog is replaced.
func TestSubscribe_ReloadReplacesZombie(t *testing.T) {
	hub := servertest.Start(t, servertest.Options{})
	c1 := hub.Dial(testCtx(t), "2001", sipclient.Options{})
	do(t, c1, subscribeReq(t, c1, "2001", "1001", "dialog"))
	c1.Close()
	waitFor(t, "the hub to notice the closed socket", func() bool {
		l := hub.Server.Notifier().List("2001")
		return len(l) == 1 && !l[0].Attached
	})
	c2 := hub.Dial(testCtx(t), "2001", sipclient.Options{})
	do(t, c2, subscribeReq(t, c2, "2001", "1001", "dialog"))
	if n := hub.Server.Notifier().Count()["dialog"]; n != 1 {
		t.Fatalf("subscriptions = %d, want 1", n)
	}
}

func TestSubscribe_Presence_ClosedThenOpen(t *testing.T) {
	hub := servertest.Start(t, servertest.Options{})
	w, opts := newWatcher()
	c := hub.Dial(testCtx(t), "2001", opts)
	if res := do(t, c, subscribeReq(t, c, "2001", "1001", "presence")); res.StatusCode != 200 {
		t.Fatalf("SUBSCRIBE: %d", res.StatusCode)
	}
	n := w.next(t)
	if !strings.Contains(string(n.Body()), "<basic>closed</basic>") || header(n, "Content-Type") != "application/pidf+xml" {
		t.Fatalf("initial presence: %s", n.Body())
	}
	p := hub.Dial(testCtx(t), "1001", sipclient.Options{})
	req := withBody(newReq(t, p, sip.PUBLISH, "1001", "1001", "Event", "presence"), "application/pidf+xml", pidf(servertest.AOR("1001"), "open", "at desk"))
	if res := do(t, p, req); res.StatusCode != 200 {
		t.Fatalf("PUBLISH: %d", res.StatusCode)
	}
	n = w.next(t)
	if !strings.Contains(string(n.Body()), "<basic>open</basic>") || !strings.Contains(string(n.Body()), "at desk") {
		t.Fatalf("after PUBLISH: %s", n.Body())
	}
}

// Several providers for one pair: each decides from the subscription.
func TestProviders_SelectionBySubscription(t *testing.T) {
	hub := servertest.Start(t, servertest.Options{})
	err := hub.Server.Notifier().Providers().Register(notifier.Provider{
		Name: "vendor-x", Event: "dialog", ContentType: "application/dialog-info+xml",
		Handles: func(s notifier.SubscriptionInfo) bool { return strings.HasPrefix(s.UserAgent, "VendorX") },
		Render: func(v compositor.View, _ string) (notifier.Body, error) {
			return notifier.Body{Data: []byte("vendor-x dialogs=" + strconv.Itoa(len(v.Dialogs))), VersionAt: -1}, nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ ua, want string }{{"VendorX/2.0", "vendor-x dialogs=0"}, {"JsSIP 3.13", "<dialog-info"}} {
		w, opts := newWatcher()
		c := hub.Dial(testCtx(t), "2001", opts)
		do(t, c, subscribeReq(t, c, "2001", "1001", "dialog", "User-Agent", tt.ua))
		if body := string(w.next(t).Body()); !strings.Contains(body, tt.want) {
			t.Errorf("UA %s got %q, want %q", tt.ua, body, tt.want)
		}
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	// Something that must happen, bounded for a loaded machine (-race, two
	// packages on two cores); not a speed check.
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

var _ = context.Background

// A client that un-SUBSCRIBEs and closes at once leaves nothing behind.
func TestSubscribe_UnsubscribeThenClose_LeavesNoZombie(t *testing.T) {
	hub := servertest.Start(t, servertest.Options{})
	ctx := testCtx(t)
	block := make(chan struct{})
	defer close(block)
	c := hub.Dial(ctx, "2001", sipclient.Options{OnRequest: func(r *sip.Request) int {
		if strings.HasPrefix(header(r, "Subscription-State"), "terminated") {
			return 0 // never answer the final NOTIFY
		}
		return 200
	}})
	req := subscribeReq(t, c, "2001", "1001", "dialog")
	res := do(t, c, req)
	unsub := sipclient.InDialog(req, res)
	unsub.ReplaceHeader(sip.NewHeader("Expires", "0"))
	do(t, c, unsub)
	c.Close()
	waitFor(t, "the subscription to be gone", func() bool { return len(hub.Server.Notifier().List("2001")) == 0 })
}

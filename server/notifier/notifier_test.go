package notifier

// Unit tests of the notifier's own rules, on the benchmarks' fakes: real
// flows over a recording connection, views served from memory, NOTIFYs
// answered through the flow as the hub's dispatch does.

import (
	"context"
	"errors"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/presencehub/presencehub/compositor"
	"github.com/presencehub/presencehub/internal/siprule"
	"github.com/presencehub/presencehub/server/auth"
)

const lampAOR = "sip:1001@" + benchDomain

// recObserver records what the notifier reports.
type recObserver struct {
	mu      sync.Mutex
	written []string // resource of each NotifyWritten
	sent    int
	dedup   int
	failed  []string // reason of each NotifyFailed
	subs    int
}

func (o *recObserver) NotifyWritten(resource, _ string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.written = append(o.written, resource)
}
func (o *recObserver) NotifySent(string, time.Duration) { o.mu.Lock(); o.sent++; o.mu.Unlock() }
func (o *recObserver) NotifyDeduplicated(string)        { o.mu.Lock(); o.dedup++; o.mu.Unlock() }
func (o *recObserver) NotifyFailed(_, reason string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.failed = append(o.failed, reason)
}
func (o *recObserver) SubscriptionsChanged(_ string, d int) { o.mu.Lock(); o.subs += d; o.mu.Unlock() }

func (o *recObserver) snapshot() (written []string, failed []string, subs int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]string(nil), o.written...), append([]string(nil), o.failed...), o.subs
}

// notify is a NOTIFY as its subscriber saw it.
type notify struct {
	cseq    int
	state   string // Subscription-State
	version string // dialog-info version
	body    string
	branch  string
}

var versionAttr = regexp.MustCompile(`version="(\d+)"`)

// testHub is a notifier with a recording observer.
type testHub struct {
	*benchHub
	obs *recObserver
	id  *auth.Identity
}

func newTestHub(t *testing.T, configure ...func(*Config)) *testHub {
	obs := &recObserver{}
	h := newBenchHub(t, append([]func(*Config){func(c *Config) {
		c.Observer = obs
		c.Expiry = map[string]siprule.ExpiryPolicy{compositor.EventDialog: {Min: time.Second}}
	}}, configure...)...)
	return &testHub{benchHub: h, obs: obs, id: h.identity(t, "attendant")}
}

// lampFlow is a watcher's flow that keeps every message the hub sends.
func (h *testHub) lampFlow() *benchFlow {
	f := newBenchFlow(h.id)
	f.conn.keep = true
	return f
}

// subscribe makes a subscription to lampAOR on f with Expires (""
// keeps the default) and returns its request and the subscription.
func (h *testHub) subscribe(t *testing.T, f *benchFlow, callID, expires string) (*sip.Request, *subscription) {
	t.Helper()
	req := subscribeRequest(t, "attendant", "1001", callID)
	if expires != "3600" {
		req.RemoveHeader("Expires")
		if expires != "" {
			req.AppendHeader(sip.NewHeader("Expires", expires))
		}
	}
	if code := h.n.HandleSubscribe(req, f.fl, h.id); code != 200 {
		t.Fatalf("SUBSCRIBE answered %d", code)
	}
	h.n.mu.RLock()
	defer h.n.mu.RUnlock()
	for k, s := range h.n.dialogs {
		if k.callID == callID {
			return req, s
		}
	}
	t.Fatalf("no subscription for Call-ID %s", callID)
	return nil, nil
}

// refresh sends an in-dialog SUBSCRIBE of s on f.
func (h *testHub) refresh(t *testing.T, f *benchFlow, req *sip.Request, s *subscription, expires string) int {
	t.Helper()
	r := req.Clone()
	r.To().Params.Add("tag", s.key.localTag)
	r.RemoveHeader("Expires")
	r.AppendHeader(sip.NewHeader("Expires", expires))
	return h.n.HandleSubscribe(r, f.fl, h.id)
}

// notifies returns the NOTIFYs sent on f since the last call.
func notifies(t *testing.T, f *benchFlow) []notify {
	t.Helper()
	f.conn.mu.Lock()
	msgs := f.conn.msgs
	f.conn.msgs = nil
	f.conn.mu.Unlock()
	var out []notify
	for _, m := range msgs {
		if !strings.HasPrefix(string(m), "NOTIFY ") {
			continue
		}
		var n notify
		hl := siprule.ScanHeaders(m)
		for hl.Next() {
			switch {
			case hl.Is("cseq", 0):
				num, _, _ := strings.Cut(string(hl.Value()), " ")
				n.cseq, _ = strconv.Atoi(num)
			case hl.Is("subscription-state", 0):
				n.state = string(hl.Value())
			case hl.Is("via", 'v'):
				_, n.branch, _ = strings.Cut(string(hl.Value()), ";branch=")
			}
		}
		n.body = string(hl.Body())
		if v := versionAttr.FindStringSubmatch(n.body); v != nil {
			n.version = v[1]
		}
		out = append(out, n)
	}
	return out
}

// change makes change number i the lamp's current view and fans it out,
// as the compositor's change feed does.
func (h *testHub) change(i int) {
	v := benchView(lampAOR, i)
	h.views.mu.Lock()
	h.views.v[lampAOR] = v
	h.views.mu.Unlock()
	h.n.fanOut(v)
}

// lampState is the dialog state a benchView of change i shows.
func lampState(i int) string {
	if i%2 == 1 {
		return "confirmed"
	}
	return "early"
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// While a NOTIFY is in flight, later states wait behind it and only the
// newest is sent once it is answered; an older revision never goes out.
func TestNotifier_CoalescesBehindTheNotifyInFlight(t *testing.T) {
	tests := []struct {
		name      string
		changes   []int // benchView change numbers offered while the first NOTIFY is unanswered
		wantAfter []int // change numbers of the NOTIFYs after the answer, in order
	}{
		{"one change waits for the answer", []int{1}, []int{1}},
		{"three changes: only the newest is sent", []int{1, 2, 3}, []int{3}},
		{"an older revision after a newer one is dropped", []int{4, 2}, []int{4}},
		{"no change: nothing more", nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newTestHub(t)
			f := h.lampFlow()
			h.subscribe(t, f, "c1", "3600")
			if got := notifies(t, f); len(got) != 1 {
				t.Fatalf("%d NOTIFYs after SUBSCRIBE, want the first one", len(got))
			}
			for _, i := range tt.changes {
				h.change(i)
			}
			if got := notifies(t, f); len(got) != 0 {
				t.Fatalf("%d NOTIFYs sent while one is in flight", len(got))
			}
			for _, i := range tt.wantAfter {
				if answer(f, 200) != 1 {
					t.Fatal("no NOTIFY in flight to answer")
				}
				got := notifies(t, f)
				if len(got) != 1 || !strings.Contains(got[0].body, "<state>"+lampState(i)+"</state>") ||
					!strings.Contains(got[0].body, "seq="+strconv.Itoa(i)) {
					t.Fatalf("after the answer: %+v, want the state of change %d", got, i)
				}
			}
			answer(f, 200)
			if got := notifies(t, f); len(got) != 0 {
				t.Fatalf("%d more NOTIFYs, want none", len(got))
			}
		})
	}
}

// Per-resource coalescing before the fan-out: changes that arrive while
// Run is busy reach each subscriber once, as the newest state.
func TestNotifier_RunFansOutTheNewestChangePerResource(t *testing.T) {
	tests := []struct {
		name    string
		changes int
	}{{"one change", 1}, {"five changes of one resource", 5}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newTestHub(t)
			f := h.lampFlow()
			h.subscribe(t, f, "c1", "3600")
			notifies(t, f)
			answer(f, 200)
			for i := 1; i <= tt.changes; i++ {
				v := benchView(lampAOR, i)
				h.views.v[lampAOR] = v
				h.n.OnChange(compositor.Change{View: v})
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() { defer close(done); h.n.Run(ctx) }()
			defer func() { cancel(); <-done }()
			var got []notify
			waitUntil(t, "the NOTIFY", func() bool { got = append(got, notifies(t, f)...); return len(got) > 0 })
			answer(f, 200)
			time.Sleep(20 * time.Millisecond)
			got = append(got, notifies(t, f)...)
			if len(got) != 1 || !strings.Contains(got[0].body, "seq="+strconv.Itoa(tt.changes)) {
				t.Fatalf("NOTIFYs %+v, want one with change %d", got, tt.changes)
			}
		})
	}
}

// The NOTIFYs of a subscription go out one at a time, in order: CSeq and
// the dialog-info version rise by one each, and only state changes other
// than the first NOTIFY are reported as written.
func TestNotifier_OrderCSeqAndVersion(t *testing.T) {
	for _, changes := range []int{1, 3, 6} {
		t.Run(strconv.Itoa(changes)+" changes", func(t *testing.T) {
			h := newTestHub(t)
			f := h.lampFlow()
			h.subscribe(t, f, "c1", "3600")
			var all []notify
			for i := 1; i <= changes; i++ {
				all = append(all, notifies(t, f)...)
				answer(f, 200)
				h.change(i)
			}
			all = append(all, notifies(t, f)...)
			if len(all) != changes+1 {
				t.Fatalf("%d NOTIFYs, want %d", len(all), changes+1)
			}
			for i, n := range all {
				if n.cseq != i+1 || n.version != strconv.Itoa(i) || !strings.HasPrefix(n.state, "active;expires=") {
					t.Errorf("NOTIFY %d: CSeq %d, version %s, state %q; want CSeq %d, version %d, active", i, n.cseq, n.version, n.state, i+1, i)
				}
			}
			written, _, _ := h.obs.snapshot()
			if len(written) != changes {
				t.Errorf("NotifyWritten %d times, want %d (not the first NOTIFY)", len(written), changes)
			}
			for _, r := range written {
				if r != lampAOR {
					t.Errorf("NotifyWritten resource %q, want %q", r, lampAOR)
				}
			}
		})
	}
}

// A client that reconnects after its first NOTIFY was lost with the old
// socket, while a change is committed but not yet fanned out, is sent the
// current state on the new flow, never the lost older one.
func TestNotifier_RefreshAfterLostNotify_SendsCurrentState(t *testing.T) {
	h := newTestHub(t, func(c *Config) { c.RebindGrace = time.Hour })
	old, nf := h.lampFlow(), h.lampFlow()
	req, s := h.subscribe(t, old, "c1", "3600") // first NOTIFY never answered
	notifies(t, old)
	old.fl.Close()
	waitUntil(t, "the subscription to be detached", func() bool { return s.flowSnapshot() == nil })
	// The compositor holds change 1; the notifier has not been told yet.
	h.views.mu.Lock()
	h.views.v[lampAOR] = benchView(lampAOR, 1)
	h.views.mu.Unlock()
	if code := h.refresh(t, nf, req, s, "600"); code != 200 {
		t.Fatalf("re-SUBSCRIBE on the new flow: %d", code)
	}
	var got []notify
	for range 4 {
		got = append(got, notifies(t, nf)...)
		answer(nf, 200)
	}
	if len(got) == 0 {
		t.Fatal("no NOTIFY on the new flow")
	}
	for i, n := range got {
		if !strings.Contains(n.body, "seq=1") {
			t.Errorf("NOTIFY %d on the new flow: %q, want change 1 (the current state)", i, n.body)
		}
	}
}

// A client that un-SUBSCRIBEs and closes its socket before answering the
// first NOTIFY leaves nothing behind: the final NOTIFY that waited behind
// the first cannot be delivered, and a terminated subscription is owed no
// rebind grace.
func TestNotifier_UnsubscribeThenCloseBeforeFirstAnswer_EndsAtOnce(t *testing.T) {
	h := newTestHub(t, func(c *Config) { c.RebindGrace = time.Hour })
	f := h.lampFlow()
	req, s := h.subscribe(t, f, "c1", "3600") // first NOTIFY in flight, unanswered
	if code := h.refresh(t, f, req, s, "0"); code != 200 {
		t.Fatalf("un-SUBSCRIBE: %d", code)
	}
	if got := notifies(t, f); len(got) != 1 || !strings.HasPrefix(got[0].state, "active") {
		t.Fatalf("NOTIFYs before the close %+v, want the first only (the final waits behind it)", got)
	}
	f.fl.Close()
	waitUntil(t, "the subscription to end", func() bool { return len(h.n.List("")) == 0 })
	if _, _, subs := h.obs.snapshot(); subs != 0 {
		t.Errorf("subscriptions gauge %d, want 0", subs)
	}
}

// A subscription whose flow closed waits RebindGrace for its client: an
// in-dialog SUBSCRIBE on a new flow moves it there with the NOTIFY it
// missed and CSeq still rising; without one it ends, with no final NOTIFY.
func TestNotifier_Rebind(t *testing.T) {
	tests := []struct {
		name          string
		grace         time.Duration
		changeWhile   bool // a state change while detached
		comeBack      bool
		wantStates    []string // NOTIFYs on the new flow (Subscription-State prefixes)
		wantRemaining int
	}{
		{"back within grace, state changed meanwhile", time.Minute, true, true, []string{"active", "active"}, 1},
		{"back within grace, nothing changed", time.Minute, false, true, []string{"active"}, 1},
		{"not back within grace", 30 * time.Millisecond, true, false, nil, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newTestHub(t, func(c *Config) { c.RebindGrace = tt.grace })
			old := h.lampFlow()
			req, s := h.subscribe(t, old, "c1", "3600")
			first := notifies(t, old)
			answer(old, 200)
			old.fl.Close()
			if tt.changeWhile {
				h.change(1)
			}
			if got := notifies(t, old); len(got) != 0 {
				t.Fatalf("%d NOTIFYs on the closed flow", len(got))
			}
			if !tt.comeBack {
				waitUntil(t, "the subscription to end", func() bool { return len(h.n.List("")) == 0 })
				if _, _, subs := h.obs.snapshot(); subs != 0 {
					t.Errorf("subscriptions gauge %d, want 0", subs)
				}
				return
			}
			nf := h.lampFlow()
			if code := h.refresh(t, nf, req, s, "600"); code != 200 {
				t.Fatalf("re-SUBSCRIBE on the new flow: %d", code)
			}
			var got []notify
			for range 4 {
				got = append(got, notifies(t, nf)...)
				answer(nf, 200)
			}
			if len(got) != len(tt.wantStates) {
				t.Fatalf("NOTIFYs on the new flow %+v, want %d", got, len(tt.wantStates))
			}
			for i, n := range got {
				if !strings.HasPrefix(n.state, tt.wantStates[i]) || n.cseq != first[0].cseq+1+i {
					t.Errorf("NOTIFY %d: %q CSeq %d, want %s CSeq %d", i, n.state, n.cseq, tt.wantStates[i], first[0].cseq+1+i)
				}
			}
			if tt.changeWhile && !strings.Contains(got[0].body, "seq=1") {
				t.Errorf("the missed state was not sent first: %q", got[0].body)
			}
			if n := len(h.n.List("")); n != tt.wantRemaining {
				t.Errorf("%d subscriptions, want %d", n, tt.wantRemaining)
			}
		})
	}
}

// The races of a reconnect: the client is back on a new flow before the
// hub saw the old one close, or the old connection refuses the NOTIFY as it
// closes. Either way the subscription lives on the new flow and the state
// it missed arrives there.
func TestNotifier_RebindRaces(t *testing.T) {
	tests := []struct {
		name string
		// lose makes the NOTIFY of change 1 go astray on the old flow and
		// rebinds the subscription to nf, in the order of the race.
		lose func(t *testing.T, h *testHub, old, nf *benchFlow, req *sip.Request, s *subscription)
	}{
		{"re-SUBSCRIBE on the new flow before the old one's close is seen", func(t *testing.T, h *testHub, old, nf *benchFlow, req *sip.Request, s *subscription) {
			h.change(1) // in flight on the old flow, never answered
			if code := h.refresh(t, nf, req, s, "600"); code != 200 {
				t.Fatalf("re-SUBSCRIBE: %d", code)
			}
			old.fl.Close()
		}},
		{"the closing connection refuses the NOTIFY", func(t *testing.T, h *testHub, old, nf *benchFlow, req *sip.Request, s *subscription) {
			old.conn.mu.Lock()
			old.conn.err = errors.New("connection closing")
			old.conn.mu.Unlock()
			h.change(1)
			old.fl.Close()
			if code := h.refresh(t, nf, req, s, "600"); code != 200 {
				t.Fatalf("re-SUBSCRIBE: %d", code)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newTestHub(t)
			old, nf := h.lampFlow(), h.lampFlow()
			req, s := h.subscribe(t, old, "c1", "3600")
			notifies(t, old)
			answer(old, 200)
			tt.lose(t, h, old, nf, req, s)
			var got []notify
			for range 4 {
				got = append(got, notifies(t, nf)...)
				answer(nf, 200)
			}
			if len(got) == 0 || !strings.Contains(got[0].body, "seq=1") || !strings.HasPrefix(got[0].state, "active") {
				t.Fatalf("NOTIFYs on the new flow %+v, want the missed change first", got)
			}
			if l := h.n.List(""); len(l) != 1 || !l[0].Attached {
				t.Fatalf("subscriptions %+v, want one, attached", l)
			}
			if _, failed, _ := h.obs.snapshot(); len(failed) != 0 {
				t.Errorf("NOTIFY failures %q, want none", failed)
			}
			h.change(2)
			if got := notifies(t, nf); len(got) != 1 || !strings.Contains(got[0].body, "seq=2") {
				t.Fatalf("after the rebind: %+v, want change 2 on the new flow", got)
			}
		})
	}
}

// A NOTIFY that is not answered within Timer F, or is answered with an
// error, ends the subscription (RFC 6665 §4.2.2), reported with its reason;
// nothing is sent after it.
func TestNotifier_FailedNotifyEndsTheSubscription(t *testing.T) {
	tests := []struct {
		name       string
		code       int // 0: no answer
		wantReason string
	}{
		{"no answer within Timer F", 0, "timeout"},
		{"481 Subscription Does Not Exist", 481, "481"},
		{"500", 500, "500"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newTestHub(t)
			f := h.lampFlow()
			f.fl.SetTimerF(30 * time.Millisecond)
			h.subscribe(t, f, "c1", "3600")
			notifies(t, f)
			if tt.code != 0 {
				answer(f, tt.code)
			}
			waitUntil(t, "the subscription to end", func() bool { return len(h.n.List("")) == 0 })
			if _, failed, subs := h.obs.snapshot(); len(failed) != 1 || failed[0] != tt.wantReason || subs != 0 {
				t.Errorf("failures %q, subscriptions %d; want [%s], 0", failed, subs, tt.wantReason)
			}
			h.change(1)
			if got := notifies(t, f); len(got) != 0 {
				t.Errorf("%d NOTIFYs after the subscription ended", len(got))
			}
		})
	}
}

// Every way a subscription ends sends one final NOTIFY, terminated with
// its reason and carrying the last state (JsSIP ignores a body-less one);
// nothing follows it, and the subscription is gone once it is answered.
func TestNotifier_FinalNotify(t *testing.T) {
	tests := []struct {
		name       string
		expires    string // of the initial SUBSCRIBE
		end        func(t *testing.T, h *testHub, f *benchFlow, req *sip.Request, s *subscription)
		wantState  string
		wantChange int // benchView change the final NOTIFY carries (-1: the initial empty state)
	}{
		{"un-SUBSCRIBE", "3600", func(t *testing.T, h *testHub, f *benchFlow, req *sip.Request, s *subscription) {
			if code := h.refresh(t, f, req, s, "0"); code != 200 {
				t.Fatalf("un-SUBSCRIBE: %d", code)
			}
		}, "terminated;reason=timeout", 1},
		{"fetch (Expires: 0)", "0", nil, "terminated;reason=timeout", -1},
		{"the subscription expires", "1", func(t *testing.T, h *testHub, f *benchFlow, req *sip.Request, s *subscription) {
			waitUntil(t, "the final NOTIFY", func() bool {
				f.conn.mu.Lock()
				defer f.conn.mu.Unlock()
				return len(f.conn.branches) > 0
			})
		}, "terminated;reason=timeout", 1},
		{"shutdown", "3600", func(t *testing.T, h *testHub, f *benchFlow, req *sip.Request, s *subscription) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
			defer cancel()
			_ = h.n.Shutdown(ctx) // returns before the answer
		}, "terminated;reason=deactivated", 1},
		{"ended by the admin API", "3600", func(t *testing.T, h *testHub, f *benchFlow, req *sip.Request, s *subscription) {
			if !h.n.End(s.id(), ReasonRejected) {
				t.Fatal("End found no subscription")
			}
		}, "terminated;reason=rejected", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newTestHub(t)
			f := h.lampFlow()
			req, s := h.subscribe(t, f, "c1", tt.expires)
			if tt.end != nil {
				notifies(t, f)
				answer(f, 200)
				h.change(1)
				notifies(t, f)
				answer(f, 200)
				tt.end(t, h, f, req, s)
			}
			got := notifies(t, f)
			if len(got) != 1 || got[0].state != tt.wantState {
				t.Fatalf("NOTIFYs %+v, want one %q", got, tt.wantState)
			}
			switch {
			case tt.wantChange < 0 && strings.Contains(got[0].body, "<dialog "):
				t.Errorf("final NOTIFY of a fetch carries dialogs: %q", got[0].body)
			case tt.wantChange >= 0 && !strings.Contains(got[0].body, "seq="+strconv.Itoa(tt.wantChange)):
				t.Errorf("final NOTIFY does not carry the last state: %q", got[0].body)
			}
			h.change(2)
			if more := notifies(t, f); len(more) != 0 {
				t.Fatalf("%d NOTIFYs after the final one", len(more))
			}
			answer(f, 200)
			waitUntil(t, "the subscription to go", func() bool { return len(h.n.List("")) == 0 })
			if code := h.refresh(t, f, req, s, "600"); code != 481 {
				t.Errorf("refresh after the end: %d, want 481", code)
			}
		})
	}
}

// The final NOTIFY replaces an active one waiting behind the NOTIFY in
// flight: the subscriber gets the newest state once, terminated.
func TestNotifier_FinalReplacesPendingActive(t *testing.T) {
	h := newTestHub(t)
	f := h.lampFlow()
	_, s := h.subscribe(t, f, "c1", "3600")
	notifies(t, f)
	h.change(1) // waits behind the first NOTIFY
	s.terminate(ReasonNoResource)
	answer(f, 200)
	got := notifies(t, f)
	if len(got) != 1 || got[0].state != "terminated;reason=noresource" || !strings.Contains(got[0].body, "seq=1") {
		t.Fatalf("NOTIFYs %+v, want one terminated with change 1", got)
	}
}

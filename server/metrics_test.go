package server_test

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/presencehub/presencehub/compositor"
	"github.com/presencehub/presencehub/compositor/store"
	"github.com/presencehub/presencehub/internal/sipclient"
	"github.com/presencehub/presencehub/server"
	"github.com/presencehub/presencehub/server/auth"
	"github.com/presencehub/presencehub/server/notifier"
	"github.com/presencehub/presencehub/server/servertest"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// scrape GETs /metrics from the hub and parses it with the Prometheus text parser.
func scrape(t *testing.T, hub *servertest.Hub) map[string]*dto.MetricFamily {
	t.Helper()
	res, err := http.Get(hub.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %s", res.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(res.Body)
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return fams
}

// sample is the value of the series of name whose labels include want:
// a counter's or gauge's value, a histogram's sample count. Absent: 0, false.
func sample(fams map[string]*dto.MetricFamily, name string, want ...string) (float64, bool) {
	fam := fams[name]
	if fam == nil {
		return 0, false
	}
next:
	for _, m := range fam.GetMetric() {
		for i := 0; i+1 < len(want); i += 2 {
			found := false
			for _, l := range m.GetLabel() {
				if l.GetName() == want[i] && l.GetValue() == want[i+1] {
					found = true
				}
			}
			if !found {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue(), true
		case m.Gauge != nil:
			return m.Gauge.GetValue(), true
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount()), true
		case m.Untyped != nil:
			return m.Untyped.GetValue(), true
		}
	}
	return 0, false
}

// metricWant is one expected series value.
type metricWant struct {
	name    string
	labels  []string
	value   float64
	atLeast bool // value is a lower bound
}

// expectMetrics scrapes until every series has its expected value (some move
// only when a NOTIFY's answer arrives) and reports the mismatches otherwise.
func expectMetrics(t *testing.T, hub *servertest.Hub, wants []metricWant) map[string]*dto.MetricFamily {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		fams := scrape(t, hub)
		var bad []string
		for _, w := range wants {
			got, _ := sample(fams, w.name, w.labels...)
			if got != w.value && !(w.atLeast && got >= w.value) {
				bad = append(bad, fmt.Sprintf("%s%v = %v, want %v", w.name, w.labels, got, w.value))
			}
		}
		if len(bad) == 0 {
			return fams
		}
		if time.Now().After(deadline) {
			sort.Strings(bad)
			t.Fatalf("metrics after scripted traffic:\n  %s", strings.Join(bad, "\n  "))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// failingStore refuses to create publications of one resource (a full disk, say).
type failingStore struct {
	store.Store
	resource string
}

func (s failingStore) Create(ctx context.Context, p store.Publication) (store.Publication, error) {
	if p.Resource == s.resource {
		return store.Publication{}, fmt.Errorf("failing store: %w", store.ErrBusy)
	}
	return s.Store.Create(ctx, p)
}

// lampProvider renders only whether an extension is busy: a change of call
// state that keeps it busy renders the same body and is deduplicated.
var lampProvider = notifier.Provider{
	Name: "lamp", Event: compositor.EventDialog, ContentType: "application/dialog-info+xml",
	Handles: func(s notifier.SubscriptionInfo) bool { return s.UserAgent == "Lamp/1" },
	Render: func(v compositor.View, _ string) (notifier.Body, error) {
		if len(v.Dialogs) > 0 {
			return notifier.Body{Data: []byte("busy"), VersionAt: -1}, nil
		}
		return notifier.Body{Data: []byte("idle"), VersionAt: -1}, nil
	},
}

func TestMetrics_ScriptedTraffic_CountersAndGaugesMove(t *testing.T) {
	hub := servertest.Start(t, servertest.Options{Configure: func(c *server.Config) {
		c.Store = failingStore{Store: c.Store, resource: servertest.AOR("1999")}
	}})
	if err := hub.Server.Notifier().Providers().Register(lampProvider); err != nil {
		t.Fatal(err)
	}
	ctx := testCtx(t)

	// A PBX-like client: registers its own AOR, may publish every user's state.
	pbx := hub.Dial(ctx, "1001", sipclient.Options{Token: hub.Token("1001", func(c *auth.Claims) { c.Publish = []string{"*"} })})
	if res := do(t, pbx, newReq(t, pbx, sip.REGISTER, "1001", "1001", "Expires", "600")); res.StatusCode != 200 {
		t.Fatalf("REGISTER: %d", res.StatusCode)
	}

	// A watcher of 1001's lamp, and one that answers every NOTIFY with 481.
	lamp, lampOpts := newWatcher()
	w1 := hub.Dial(ctx, "2001", lampOpts)
	if res := do(t, w1, subscribeReq(t, w1, "2001", "1001", "dialog", "User-Agent", "Lamp/1")); res.StatusCode != 200 {
		t.Fatalf("SUBSCRIBE: %d", res.StatusCode)
	}
	if n := lamp.next(t); string(n.Body()) != "idle" {
		t.Fatalf("initial NOTIFY body %q", n.Body())
	}
	gone := make(chan struct{}, 1)
	w2 := hub.Dial(ctx, "2002", sipclient.Options{OnRequest: func(req *sip.Request) int {
		gone <- struct{}{}
		return 481
	}})
	if res := do(t, w2, subscribeReq(t, w2, "2002", "1001", "dialog")); res.StatusCode != 200 {
		t.Fatalf("SUBSCRIBE (481 watcher): %d", res.StatusCode)
	}
	<-gone

	// State changes: early (NOTIFY), confirmed (still busy: deduplicated), presence.
	pub := &publisher{t: t, c: pbx, ext: "1001", dialog: "call1"}
	pub.state("early")
	if n := lamp.next(t); string(n.Body()) != "busy" {
		t.Fatalf("NOTIFY after early: %q", n.Body())
	}
	pub.state("confirmed")
	lamp.none(t, 200*time.Millisecond)
	pres := withBody(newReq(t, pbx, sip.PUBLISH, "1001", "1001", "Event", "presence", "Expires", "600"),
		"application/pidf+xml", pidf(servertest.AOR("1001"), "open", "here"))
	if res := do(t, pbx, pres); res.StatusCode != 200 {
		t.Fatalf("PUBLISH presence: %d", res.StatusCode)
	}

	// The store fails; a method nobody knows; bad tokens; a connection without one.
	failed := withBody(newReq(t, pbx, sip.PUBLISH, "1001", "1999", "Event", "dialog", "Expires", "600"),
		"application/dialog-info+xml", dialogInfo(servertest.AOR("1999"), "x", "early"))
	if res := do(t, pbx, failed); res.StatusCode < 500 {
		t.Fatalf("PUBLISH on a failing store: %d", res.StatusCode)
	}
	if res := do(t, pbx, newReq(t, pbx, sip.RequestMethod("FROBNICATE"), "1001", "1001")); res.StatusCode != 405 {
		t.Fatalf("FROBNICATE: %d", res.StatusCode)
	}
	otherKey, err := auth.Signer{Secret: []byte("another hub's secret, 32 bytes.."), Domain: servertest.Domain}.Mint("1001", time.Hour, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tok := range []string{"not-a-jwt", otherKey} {
		if c, err := sipclient.Dial(ctx, hub.WS, sipclient.Options{Token: tok}); err == nil {
			c.Close()
			t.Fatalf("upgrade with token %q accepted", tok)
		}
	}
	hub.Dial(ctx, "", sipclient.Options{})

	fams := expectMetrics(t, hub, []metricWant{
		{name: "presencehub_connections", labels: []string{"state", "authenticated"}, value: 3},
		{name: "presencehub_connections", labels: []string{"state", "unauthenticated"}, value: 1},
		{name: "presencehub_connections_opened_total", value: 4},
		{name: "presencehub_registrations", value: 1},
		{name: "presencehub_subscriptions", labels: []string{"event", "dialog"}, value: 1},
		{name: "presencehub_publications", labels: []string{"event", "dialog"}, value: 1},
		// presence: the PUBLISH and the registration presence of 1001's REGISTER
		{name: "presencehub_publications", labels: []string{"event", "presence"}, value: 2},
		{name: "presencehub_sip_responses_total", labels: []string{"method", "REGISTER", "code", "200"}, value: 1},
		{name: "presencehub_sip_responses_total", labels: []string{"method", "SUBSCRIBE", "code", "200"}, value: 2},
		{name: "presencehub_sip_responses_total", labels: []string{"method", "PUBLISH", "code", "200"}, value: 3},
		{name: "presencehub_sip_responses_total", labels: []string{"method", "other", "code", "405"}, value: 1},
		{name: "presencehub_notifies_total", labels: []string{"event", "dialog", "outcome", "sent"}, value: 2},
		{name: "presencehub_notifies_total", labels: []string{"event", "dialog", "outcome", "deduplicated"}, value: 1},
		{name: "presencehub_notify_failures_total", labels: []string{"event", "dialog", "reason", "481"}, value: 1},
		{name: "presencehub_notify_round_trip_seconds", value: 2},
		{name: "presencehub_publish_to_notify_seconds", value: 1},
		{name: "presencehub_state_changes_total", labels: []string{"event", "dialog"}, value: 2},
		{name: "presencehub_state_changes_total", labels: []string{"event", "presence"}, value: 2},
		{name: "presencehub_auth_failures_total", labels: []string{"reason", "malformed"}, value: 1},
		{name: "presencehub_auth_failures_total", labels: []string{"reason", "signature"}, value: 1},
		{name: "presencehub_store_errors_total", labels: []string{"op", "create"}, value: 1},
		{name: "presencehub_store_operation_seconds", labels: []string{"op", "create"}, value: 4},
		{name: "presencehub_store_operation_seconds", labels: []string{"op", "replace"}, value: 1},
		{name: "presencehub_write_queue_messages", value: 0},
		{name: "presencehub_write_queue_max_messages", value: 0},
	})
	// No per-user label anywhere; the method label stays bounded.
	for name, fam := range fams {
		for _, m := range fam.GetMetric() {
			for _, l := range m.GetLabel() {
				if strings.Contains(l.GetValue(), "1001") || strings.Contains(l.GetValue(), "FROBNICATE") {
					t.Errorf("%s has label %s=%q", name, l.GetName(), l.GetValue())
				}
			}
		}
	}
	for _, name := range []string{"go_goroutines", "go_memstats_heap_alloc_bytes"} { // Go runtime
		if _, ok := fams[name]; !ok {
			t.Errorf("%s missing from /metrics", name)
		}
	}
	if fams["presencehub_publish_to_notify_seconds"].GetType() != dto.MetricType_HISTOGRAM {
		t.Error("presencehub_publish_to_notify_seconds is not a histogram")
	}

	// Closing sockets moves the connection gauges and the close counter.
	w1.Close()
	w2.Close()
	expectMetrics(t, hub, []metricWant{
		{name: "presencehub_connections", labels: []string{"state", "authenticated"}, value: 1},
		{name: "presencehub_connections_closed_total", labels: []string{"reason", "normal"}, value: 2},
	})
}

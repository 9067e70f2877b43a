package server_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/nats-io/nats.go"

	"github.com/presencehub/presencehub/compositor"
	"github.com/presencehub/presencehub/compositor/store/natsstore"
	"github.com/presencehub/presencehub/internal/natstest"
	"github.com/presencehub/presencehub/internal/sipclient"
	"github.com/presencehub/presencehub/internal/siprule"
	"github.com/presencehub/presencehub/server"
	"github.com/presencehub/presencehub/server/registrar/natsreg"
	"github.com/presencehub/presencehub/server/servertest"
)

// cluster is hubs sharing one NATS JetStream store, as behind a load
// balancer: the same token key, one bucket, a node id each.
type cluster struct {
	t      *testing.T
	nats   *natstest.Cluster
	secret []byte
	conns  map[string]*nats.Conn // per node
}

func newCluster(t *testing.T) *cluster {
	secret := make([]byte, 32)
	_, _ = rand.Read(secret)
	return &cluster{t: t, nats: natstest.Start(t, 3), secret: secret, conns: map[string]*nats.Conn{}}
}

// hub starts a hub whose NATS connection prefers server srv.
func (c *cluster) hub(node string, srv int, configure func(*server.Config)) *servertest.Hub {
	c.t.Helper()
	nc, err := nats.Connect(c.nats.ServerURL(srv)+","+c.nats.URL(), nats.DontRandomize(),
		nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond))
	if err != nil {
		c.t.Fatalf("nats connect: %v", err)
	}
	c.t.Cleanup(nc.Close) // after the hub closed its store
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	st, err := natsstore.Open(ctx, natsstore.Options{Conn: nc, Bucket: "hub", Replicas: 3})
	if err != nil {
		c.t.Fatalf("natsstore: %v", err)
	}
	reg, err := natsreg.Open(ctx, natsreg.Options{Conn: nc, Bucket: "hub_registrations", Replicas: 3})
	if err != nil {
		st.Close()
		c.t.Fatalf("natsreg: %v", err)
	}
	c.conns[node] = nc
	return servertest.Start(c.t, servertest.Options{Store: st, Secret: c.secret, Configure: func(cfg *server.Config) {
		cfg.NodeID = node
		if configure != nil {
			configure(cfg)
		}
		cfg.Register.Store = reg
	}})
}

func subscribeDialog(t *testing.T, hub *servertest.Hub, as, ext string) *watcher {
	t.Helper()
	w, opts := newWatcher()
	c := hub.Dial(testCtx(t), as, opts)
	if res := do(t, c, subscribeReq(t, c, as, ext, "dialog")); res.StatusCode != 200 {
		t.Fatalf("SUBSCRIBE on %s: %d %s", hub.Addr, res.StatusCode, res.Reason)
	}
	return w
}

func TestMultiHub_PublishOnOneHub_NotifiesWatcherOnAnother(t *testing.T) {
	c := newCluster(t)
	a := c.hub("a", 0, nil)
	b := c.hub("b", 1, nil)
	w := subscribeDialog(t, b, "2001", "1001")
	if n := w.next(t); lamp(n.Body()) != "idle" {
		t.Fatalf("initial lamp %q", lamp(n.Body()))
	}
	pub := newPublisher(t, a, "1001")
	pub.state("early")
	if n := w.next(t); lamp(n.Body()) != "early" {
		t.Fatalf("NOTIFY on B after PUBLISH on A: lamp %q", lamp(n.Body()))
	}
	// A refresh with A's entity-tag through B: B finds it (RFC 3903 §6
	// step 2 holds across hubs), and the watcher on A sees B's change.
	wa := subscribeDialog(t, a, "2002", "1001")
	if n := wa.next(t); lamp(n.Body()) != "early" {
		t.Fatalf("initial lamp on A %q", lamp(n.Body()))
	}
	pubB := &publisher{t: t, c: b.Dial(testCtx(t), "1001", sipclient.Options{}), ext: "1001", dialog: pub.dialog, etag: pub.etag}
	pubB.state("confirmed")
	for name, w := range map[string]*watcher{"A": wa, "B": w} {
		if n := w.next(t); lamp(n.Body()) != "confirmed" {
			t.Fatalf("watcher on %s: lamp %q, want confirmed", name, lamp(n.Body()))
		}
	}
	w.none(t, 300*time.Millisecond)
	// The replicated change was not fed back into PUBLISH handling: one
	// publication, not one per hub.
	if pubs, err := b.Server.Compositor().List(testCtx(t), servertest.AOR("1001")); err != nil || len(pubs) != 1 {
		t.Fatalf("publications of 1001 = %d, %v; want 1", len(pubs), err)
	}
	res, err := http.Get(b.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(res.Body)
	res.Body.Close()
	for _, name := range []string{"presencehub_store_replication_lag_seconds ", "presencehub_store_watch_resumes_total ", "presencehub_store_writes_in_doubt "} {
		if !strings.Contains(string(metrics), "\n"+name) {
			t.Errorf("/metrics of a NATS hub lacks %q", name)
		}
	}
}

func TestMultiHub_Expiry_NotifiedOnceOnEveryHub(t *testing.T) {
	c := newCluster(t)
	short := func(cfg *server.Config) {
		p := siprule.ExpiryPolicy{Default: time.Hour, Min: time.Second, Max: time.Hour}
		cfg.PublishExpiry = map[string]siprule.ExpiryPolicy{compositor.EventDialog: p, compositor.EventPresence: p}
	}
	a := c.hub("a", 0, short)
	b := c.hub("b", 1, short)
	wa, wb := subscribeDialog(t, a, "2001", "1001"), subscribeDialog(t, b, "2002", "1001")
	wa.next(t)
	wb.next(t)
	pc := a.Dial(testCtx(t), "1001", sipclient.Options{})
	req := withBody(newReq(t, pc, sip.PUBLISH, "1001", "1001", "Event", "dialog", "Expires", "1"),
		"application/dialog-info+xml", dialogInfo(servertest.AOR("1001"), "x", "early"))
	if res := do(t, pc, req); res.StatusCode != 200 {
		t.Fatalf("PUBLISH: %d %s", res.StatusCode, res.Reason)
	}
	for name, w := range map[string]*watcher{"A": wa, "B": wb} {
		if n := w.next(t); lamp(n.Body()) != "early" {
			t.Fatalf("%s: lamp %q, want early", name, lamp(n.Body()))
		}
		if n := w.next(t); lamp(n.Body()) != "idle" {
			t.Fatalf("%s: lamp %q after expiry, want idle", name, lamp(n.Body()))
		}
	}
	wa.none(t, time.Second)
	wb.none(t, 10*time.Millisecond)
}

// A hub dies and the NATS server leading the bucket is stopped (it hands
// its leadership over; natstest.Stop) while a publisher keeps publishing:
// a PUBLISH is answered 200 (then it is kept) or 503 with Retry-After (then
// the publisher retries); watchers on the surviving hubs, and one that
// moved from the dead hub, end on the
// last acknowledged state.
func TestMultiHub_HubAndNATSLeaderKilled_NoAcknowledgedPublishLost(t *testing.T) {
	c := newCluster(t)
	a := c.hub("a", 0, nil)
	b := c.hub("b", 1, nil)
	dying := c.hub("c", 2, nil)
	wb := subscribeDialog(t, b, "2001", "1001")
	wc := subscribeDialog(t, dying, "2002", "1001")
	wb.next(t)
	wc.next(t)
	pc := a.Dial(testCtx(t), "1001", sipclient.Options{})
	etag, acked, busy := "", 0, 0
	lastCall := ""
	const total = 60
	for i := 0; acked < total; i++ {
		if i > 600 {
			t.Fatalf("only %d PUBLISHes acknowledged (%d answered 503)", acked, busy)
		}
		switch acked {
		case total / 3:
			if dying != nil {
				dying.Close() // the hub's sockets are gone; its state is not
				dying = nil
			}
		case total / 2:
			if l := c.nats.StreamLeader("KV_hub"); l >= 0 {
				c.nats.Stop(l)
			}
		}
		call := fmt.Sprintf("call%d", i)
		hdrs := []string{"Event", "dialog", "Expires", "3600"}
		if etag != "" {
			hdrs = append(hdrs, "SIP-If-Match", etag)
		}
		req := withBody(newReq(t, pc, sip.PUBLISH, "1001", "1001", hdrs...), "application/dialog-info+xml",
			dialogInfo(servertest.AOR("1001"), call, "confirmed"))
		res := do(t, pc, req)
		switch res.StatusCode {
		case 200:
			etag, lastCall = header(res, "SIP-ETag"), call
			acked++
		case 503:
			if header(res, "Retry-After") == "" {
				t.Fatalf("503 without Retry-After")
			}
			busy++
			time.Sleep(100 * time.Millisecond)
		default:
			t.Fatalf("PUBLISH %d: %d %s", i, res.StatusCode, res.Reason)
		}
	}
	t.Logf("%d PUBLISHes acknowledged, %d answered 503", acked, busy)
	// The watcher of the dead hub reconnects to a surviving one.
	moved := subscribeDialog(t, b, "2002", "1001")
	for name, w := range map[string]*watcher{"B": wb, "moved to B": moved} {
		deadline := time.After(10 * time.Second)
		for done := false; !done; {
			select {
			case n := <-w.ch:
				done = strings.Contains(string(n.Body()), `id="`+lastCall+`"`)
			case <-deadline:
				t.Fatalf("watcher %s never saw %s", name, lastCall)
			}
		}
	}
	_ = wc
	v := a.Server.Compositor().View(servertest.AOR("1001"), compositor.EventDialog)
	if len(v.Dialogs) != 1 || v.Dialogs[0].ID != lastCall {
		t.Fatalf("A's view %+v, want only %s", v.Dialogs, lastCall)
	}
}

// Without a NATS quorum no write can be acknowledged: PUBLISH answers 503
// with Retry-After and /readyz says not ready; when the servers are back
// it recovers on its own.
func TestMultiHub_NoNATSQuorum_Publish503ThenRecovers(t *testing.T) {
	c := newCluster(t)
	a := c.hub("a", 0, nil)
	pc := a.Dial(testCtx(t), "1001", sipclient.Options{})
	publish := func() *sip.Response {
		req := withBody(newReq(t, pc, sip.PUBLISH, "1001", "1001", "Event", "dialog", "Expires", "3600"),
			"application/dialog-info+xml", dialogInfo(servertest.AOR("1001"), "q", "early"))
		return do(t, pc, req)
	}
	if res := publish(); res.StatusCode != 200 {
		t.Fatalf("PUBLISH: %d", res.StatusCode)
	}
	c.nats.Stop(1)
	c.nats.Stop(2)
	res := publish()
	if res.StatusCode != 503 || header(res, "Retry-After") == "" {
		t.Fatalf("PUBLISH without quorum: %d %s, Retry-After %q; want 503 with Retry-After", res.StatusCode, res.Reason, header(res, "Retry-After"))
	}
	if code := readyz(t, a); code != http.StatusServiceUnavailable {
		t.Fatalf("/readyz without quorum: %d, want 503", code)
	}
	c.nats.Restart(1)
	c.nats.Restart(2)
	deadline := time.Now().Add(30 * time.Second)
	for {
		res := publish()
		if res.StatusCode == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("PUBLISH still %d %s 30s after the servers came back", res.StatusCode, res.Reason)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if code := readyz(t, a); code != http.StatusOK {
		t.Fatalf("/readyz after recovery: %d", code)
	}
}

func readyz(t *testing.T, hub *servertest.Hub) int {
	t.Helper()
	res, err := http.Get(hub.URL + "/readyz")
	if err != nil {
		t.Fatalf("/readyz: %v", err)
	}
	res.Body.Close()
	return res.StatusCode
}

// A client whose hub died reconnects to another hub and refreshes its
// subscription there (an in-dialog SUBSCRIBE, as JsSIP does): the hub
// adopts the dialog (200, a NOTIFY with the current state, CSeq above the
// old hub's) and later changes published anywhere reach it.
func TestMultiHub_HubDies_SubscriptionContinuesOnAnotherHub(t *testing.T) {
	c := newCluster(t)
	a := c.hub("a", 0, nil)
	dying := c.hub("b", 1, nil)
	w, opts := newWatcher()
	cl := dying.Dial(testCtx(t), "2001", opts)
	sub := subscribeReq(t, cl, "2001", "1001", "dialog")
	res := do(t, cl, sub)
	if res.StatusCode != 200 {
		t.Fatalf("SUBSCRIBE: %d", res.StatusCode)
	}
	first := w.next(t)
	pub := newPublisher(t, a, "1001")
	pub.state("early")
	if n := w.next(t); lamp(n.Body()) != "early" {
		t.Fatalf("lamp %q", lamp(n.Body()))
	}
	dying.Close()
	pub.state("confirmed") // while the watcher has no hub

	w2, opts2 := newWatcher()
	moved := a.Dial(testCtx(t), "2001", opts2)
	refresh := sipclient.InDialog(sub, res)
	if res := do(t, moved, refresh); res.StatusCode != 200 {
		t.Fatalf("in-dialog SUBSCRIBE on another hub: %d %s", res.StatusCode, res.Reason)
	}
	n := w2.next(t)
	if lamp(n.Body()) != "confirmed" || n.CallID().Value() != sub.CallID().Value() || n.CSeq().SeqNo <= first.CSeq().SeqNo+1 {
		t.Fatalf("NOTIFY after adoption: lamp %q Call-ID %s CSeq %d", lamp(n.Body()), n.CallID().Value(), n.CSeq().SeqNo)
	}
	toTag, _ := res.To().Params.Get("tag")
	if fromTag, _ := n.From().Params.Get("tag"); fromTag != toTag {
		t.Fatalf("NOTIFY From tag %q, want the dialog's", fromTag)
	}
	pub.state("terminated")
	if n2 := w2.next(t); lamp(n2.Body()) != "idle" || n2.CSeq().SeqNo != n.CSeq().SeqNo+1 {
		t.Fatalf("next NOTIFY: lamp %q CSeq %d", lamp(n2.Body()), n2.CSeq().SeqNo)
	}
}

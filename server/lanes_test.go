package server_test

import (
	"bufio"
	"fmt"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/presencehub/presencehub/internal/sipclient"
	"github.com/presencehub/presencehub/server"
	"github.com/presencehub/presencehub/server/auth"
	"github.com/presencehub/presencehub/server/servertest"
)

// pbxClient dials hub as a PBX (publish ["*"]) whose every incoming
// response is also handed to the returned channel, in the order the hub
// wrote them.
func pbxClient(t *testing.T, hub *servertest.Hub) (*sipclient.Client, <-chan *sip.Response) {
	t.Helper()
	answers := make(chan *sip.Response, 1024)
	tok := hub.Token("pbx", func(c *auth.Claims) { c.Publish = []string{"*"} })
	c := hub.Dial(testCtx(t), "", sipclient.Options{Token: tok, Trace: func(data []byte) {
		if msg, err := sip.ParseMessage(data); err == nil {
			if res, ok := msg.(*sip.Response); ok {
				answers <- res
			}
		}
	}})
	return c, answers
}

// pipeline sends reqs over c in order without waiting for any answer (a
// PBX publishing many extensions), then returns their answers in the
// order they arrived.
func pipeline(t *testing.T, c *sipclient.Client, answers <-chan *sip.Response, reqs []*sip.Request) []*sip.Response {
	t.Helper()
	sent := map[string]bool{}
	for _, req := range reqs {
		branch, _ := req.Via().Params.Get("branch")
		sent[branch] = true
		if req.ContentLength() == nil {
			cl := sip.ContentLengthHeader(len(req.Body()))
			req.AppendHeader(&cl)
		}
		if err := c.SendRaw([]byte(req.String())); err != nil {
			t.Fatal(err)
		}
	}
	out := make([]*sip.Response, 0, len(reqs))
	for len(out) < len(reqs) {
		select {
		case res := <-answers:
			if branch, _ := res.Via().Params.Get("branch"); sent[branch] {
				out = append(out, res)
			}
		case <-testCtx(t).Done():
			t.Fatalf("%d of %d answers", len(out), len(reqs))
		}
	}
	return out
}

func dialogPublish(t *testing.T, c *sipclient.Client, user, dialogID, state string) *sip.Request {
	aor := servertest.AOR(user)
	req := newReq(t, c, sip.PUBLISH, "pbx", user, "Event", "dialog", "Expires", "3600")
	return withBody(req, "application/dialog-info+xml", dialogInfo(aor, dialogID, state))
}

// commits reads presencehub_store_writes_per_commit from the hub's
// /metrics: transactions and the writes they carried.
func commits(t *testing.T, hub *servertest.Hub) (txs, writes int) {
	t.Helper()
	res, err := http.Get(hub.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	txs, writes = -1, -1
	for sc := bufio.NewScanner(res.Body); sc.Scan(); {
		name, val, _ := strings.Cut(sc.Text(), " ")

		switch name {
		case "presencehub_store_writes_per_commit_count":
			txs, _ = strconv.Atoi(val)
		case "presencehub_store_writes_per_commit_sum":
			writes, _ = strconv.Atoi(val)
		}
	}
	if txs < 0 || writes < 0 {
		t.Fatal("no presencehub_store_writes_per_commit in /metrics")
	}
	return txs, writes
}

// A PBX sends K PUBLISHes for K extensions over one socket without
// waiting: they are processed together and the SQLite store commits them
// together, at least 2 a transaction on average (10–24 transactions for 96
// measured under -race); processed one at a time (concurrency 1) each costs
// a transaction of its own.
func TestPublish_PipelinedOnOneSocket_ShareStoreCommits(t *testing.T) {
	const k = 96
	for _, tc := range []struct {
		concurrency int
		shared      bool
	}{
		{concurrency: 1, shared: false},
		{concurrency: 32, shared: true},
	} {
		t.Run(fmt.Sprintf("concurrency=%d", tc.concurrency), func(t *testing.T) {
			hub := servertest.Start(t, servertest.Options{Configure: func(c *server.Config) { c.PublishesInFlight = tc.concurrency }})
			c, answers := pbxClient(t, hub)
			// Each extension's state is read from the store on its first
			// PUBLISH; a round of PUBLISHes that waits for each answer loads
			// them all, so the measured round is only writes.
			for i := range k {
				if res := do(t, c, dialogPublish(t, c, strconv.Itoa(5000+i), "d", "early")); res.StatusCode != 200 {
					t.Fatalf("setup PUBLISH: %d %s", res.StatusCode, res.Reason)
				}
			}
			txs0, writes0 := commits(t, hub)
			reqs := make([]*sip.Request, k)
			for i := range reqs {
				reqs[i] = dialogPublish(t, c, strconv.Itoa(5000+i), "d", "confirmed")
			}
			for _, res := range pipeline(t, c, answers, reqs) {
				if res.StatusCode != 200 {
					t.Fatalf("PUBLISH answered %d %s", res.StatusCode, res.Reason)
				}
			}
			txs1, writes1 := commits(t, hub)
			txs, writes := txs1-txs0, writes1-writes0
			t.Logf("%d PUBLISHes: %d writes in %d transactions", k, writes, txs)
			if writes != k {
				t.Fatalf("%d writes, want %d", writes, k)
			}
			if tc.shared && txs > k/2 {
				t.Fatalf("%d transactions for %d pipelined PUBLISHes, want at most %d (2 writes a commit)", txs, k, k/2)
			}
			if !tc.shared && txs != k {
				t.Fatalf("%d transactions for %d PUBLISHes processed one at a time, want %d", txs, k, k)
			}
		})
	}
}

// PUBLISHes for one resource sent without waiting are processed in the
// order they were sent, while PUBLISHes for other resources interleaved
// with them run concurrently: each resource's answers come back in order,
// the store holds its publications in that order (revisions), and the
// composed state is the last one sent.
func TestPublish_PipelinedForOneResource_KeepSendOrder(t *testing.T) {
	hub := servertest.Start(t, servertest.Options{})
	c, answers := pbxClient(t, hub)
	const perResource = 24
	users := []string{"6001", "6002", "6003", "6004"}
	var reqs []*sip.Request
	seq := map[string]int{} // CSeq → position among its resource's PUBLISHes
	for i := range perResource {
		for _, u := range users {
			state := "confirmed"
			if i == perResource-1 {
				state = "early" // the last one sent: the composed state must end as it says
			}
			// A new publication each (no SIP-If-Match), so the store keeps every
			// one with the revision it was committed at; one dialog id in all,
			// which the newest publication decides.
			req := dialogPublish(t, c, u, "d", state)
			seq[u+"/"+strconv.Itoa(int(req.CSeq().SeqNo))] = i
			reqs = append(reqs, req)
		}
	}
	etags := map[string][]string{} // resource → entity-tags in answer order
	for _, res := range pipeline(t, c, answers, reqs) {
		if res.StatusCode != 200 {
			t.Fatalf("PUBLISH answered %d %s", res.StatusCode, res.Reason)
		}
		u := res.To().Address.User
		if want, got := len(etags[u]), seq[u+"/"+strconv.Itoa(int(res.CSeq().SeqNo))]; got != want {
			t.Fatalf("%s: answer to its PUBLISH #%d came as #%d", u, got, want)
		}
		etags[u] = append(etags[u], res.GetHeader("SIP-ETag").Value())
	}
	admin := hub.Token("admin", func(c *auth.Claims) { c.Admin = true })
	for _, u := range users {
		got := api(t, hub, "GET", "/api/resources/"+servertest.AOR(u), admin)
		pubs, _ := got.body["publications"].([]any)
		rev := map[string]float64{}
		for _, p := range pubs {
			p := p.(map[string]any)
			rev[p["etag"].(string)] = p["rev"].(float64)
		}
		for i, e := range etags[u] {
			if _, ok := rev[e]; !ok {
				t.Fatalf("%s: publication %s (#%d) not stored", u, e, i)
			}
			if i > 0 && rev[e] <= rev[etags[u][i-1]] {
				t.Fatalf("%s: PUBLISH #%d stored at revision %v, before #%d at %v", u, i, rev[e], i-1, rev[etags[u][i-1]])
			}
		}
	}
	// The state a new watcher gets is the last one sent.
	w, opts := newWatcher()
	sub := hub.Dial(testCtx(t), "watcher", opts)
	req := newReq(t, sub, sip.SUBSCRIBE, "watcher", users[0], "Event", "dialog", "Expires", "60", "Accept", "application/dialog-info+xml")
	if res := do(t, sub, req); res.StatusCode != 200 {
		t.Fatalf("SUBSCRIBE: %d", res.StatusCode)
	}
	if n := w.next(t); lamp(n.Body()) != "early" {
		t.Fatalf("a new watcher got %s, want the last state sent (early): %s", lamp(n.Body()), n.Body())
	}
}

// Lanes live only while PUBLISHes wait: once a PBX's pipelined PUBLISHes
// are answered, its idle connection is back to the goroutines it had
// before them.
func TestPublish_PipelinedLanesEnd_IdleSocketBackToItsGoroutines(t *testing.T) {
	hub := servertest.Start(t, servertest.Options{})
	c, answers := pbxClient(t, hub)
	if res := do(t, c, dialogPublish(t, c, "7000", "d", "early")); res.StatusCode != 200 {
		t.Fatalf("PUBLISH: %d", res.StatusCode)
	}
	idle := settledGoroutines(t, -1)
	var reqs []*sip.Request
	for i := range 64 {
		reqs = append(reqs, dialogPublish(t, c, strconv.Itoa(7000+i%40), "d", "confirmed"))
	}
	pipeline(t, c, answers, reqs)
	if n := settledGoroutines(t, idle); n > idle {
		t.Fatalf("%d goroutines after the PUBLISHes were answered, %d before", n, idle)
	}
}

// settledGoroutines waits up to 5 s for the goroutine count to reach at
// most want (-1: to stop changing for 100 ms) and returns it.
func settledGoroutines(t *testing.T, want int) int {
	t.Helper()
	n := runtime.NumGoroutine()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); {
		time.Sleep(100 * time.Millisecond)
		m := runtime.NumGoroutine()
		if (want < 0 && m == n) || (want >= 0 && m <= want) {
			return m
		}
		n = m
	}
	return n
}

// A SUBSCRIBE read right after PUBLISHes for the same resource on one
// connection may be answered before them (they run on the resource's lane;
// RFC 6665 §4.2.1 allows either order), but the subscriber always ends up
// with the state the last PUBLISH sent.
func TestPublish_SubscribeRightAfterPipelinedPublishes_SeesFinalState(t *testing.T) {
	hub := servertest.Start(t, servertest.Options{})
	notifies := make(chan *sip.Request, 1024)
	tok := hub.Token("pbx", func(c *auth.Claims) { c.Publish, c.Subscribe = []string{"*"}, []string{"*"} })
	c := hub.Dial(testCtx(t), "", sipclient.Options{Token: tok, Incoming: notifies})
	var reqs []*sip.Request
	for i := range 8 {
		state := "confirmed"
		if i == 7 {
			state = "early"
		}
		reqs = append(reqs, dialogPublish(t, c, "6100", "d", state))
	}
	reqs = append(reqs, newReq(t, c, sip.SUBSCRIBE, "pbx", "6100", "Event", "dialog", "Expires", "60", "Accept", "application/dialog-info+xml"))
	for _, req := range reqs {
		if req.ContentLength() == nil {
			cl := sip.ContentLengthHeader(len(req.Body()))
			req.AppendHeader(&cl)
		}
		if err := c.SendRaw([]byte(req.String())); err != nil {
			t.Fatal(err)
		}
	}
	// The subscriber's state is the last NOTIFY's once they stop coming.
	last := ""
	for deadline := time.After(10 * time.Second); ; {
		select {
		case n := <-notifies:
			last = lamp(n.Body())
			continue
		case <-time.After(500 * time.Millisecond):
		case <-deadline:
		}
		break
	}
	if last != "early" {
		t.Fatalf("the subscriber's last NOTIFY shows %q, want the last state published (early)", last)
	}
}

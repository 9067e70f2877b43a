package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/presencehub/presencehub/internal/natstest"
	"github.com/presencehub/presencehub/internal/sipclient"
	"github.com/presencehub/presencehub/server/auth"
)

// Two hub processes share one NATS JetStream cluster (--store nats). A
// watcher on hub B sees a PUBLISH made on hub A; then publishers run flat
// out on A, the NATS server leading the bucket is killed, then hub A is
// killed with SIGKILL, and every PUBLISH that A had answered 200 must be
// refreshable on B with its entity-tag.
func TestServe_StoreNATS_SIGKILLOfAHubAndTheNATSLeader_KeepsEveryAcknowledgedPublish(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the binary twice")
	}
	nc := natstest.Start(t, 3)
	env := func(node string) []string {
		return []string{"PRESENCEHUB_STORE=nats", "PRESENCEHUB_NATS_URL=" + nc.URL(), "PRESENCEHUB_NODE_ID=" + node,
			"PRESENCEHUB_REQUESTS_PER_SECOND=100000"}
	}
	a := startHub(t, env("a")...)
	b := startHub(t, env("b")...)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	// Cross-hub NOTIFY, through the real binary and its flags.
	notifies := make(chan *sip.Request, 100)
	w, err := sipclient.Dial(ctx, "ws://"+b.addr+"/ws", sipclient.Options{Token: mint(t, "2001", nil), Incoming: notifies})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	sub, _ := w.NewRequest(sip.SUBSCRIBE, aor("2001"), aor("1001"))
	sub.AppendHeader(sip.NewHeader("Event", "dialog"))
	sub.AppendHeader(sip.NewHeader("Expires", "600"))
	if res, err := w.Do(ctx, sub); err != nil || res.StatusCode != 200 {
		t.Fatalf("SUBSCRIBE on B: %v %v", res, err)
	}
	<-notifies

	// REGISTER bindings are shared too: B's 200 lists the one made on A.
	for i, hub := range []*hubProcess{a, b} {
		phone, err := sipclient.Dial(ctx, "ws://"+hub.addr+"/ws", sipclient.Options{Token: mint(t, "1001", nil)})
		if err != nil {
			t.Fatal(err)
		}
		defer phone.Close()
		reg, _ := phone.NewRequest(sip.REGISTER, aor("1001"), aor("1001"))
		reg.AppendHeader(sip.NewHeader("Expires", "600"))
		res, err := phone.Do(ctx, reg)
		if err != nil || res.StatusCode != 200 || len(res.GetHeaders("Contact")) != i+1 {
			t.Fatalf("REGISTER on hub %d: %v %v, want 200 listing %d bindings", i, res, err, i+1)
		}
	}
	tok := mint(t, "pbx", func(c *auth.Claims) { c.Publish = []string{"*"} })
	first, err := sipclient.Dial(ctx, "ws://"+a.addr+"/ws", sipclient.Options{Token: tok})
	if err != nil {
		t.Fatal(err)
	}
	if res, err := publishEarly(ctx, first, aor("1001")); err != nil || res.StatusCode != 200 {
		t.Fatalf("PUBLISH on A: %v %v", res, err)
	}
	select {
	case n := <-notifies:
		if !strings.Contains(string(n.Body()), "early") {
			t.Fatalf("NOTIFY on B: %s", n.Body())
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no NOTIFY on B within 5s of the PUBLISH on A")
	}

	type acked struct{ aor, etag string }
	var mu sync.Mutex
	var acks []acked
	busy := 0
	pctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for p := 0; p < 4; p++ {
		cl, err := sipclient.Dial(ctx, "ws://"+a.addr+"/ws", sipclient.Options{Token: tok})
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; pctx.Err() == nil; i++ {
				a := aor(fmt.Sprintf("%d%05d", p+1, i))
				res, err := publishEarly(ctx, cl, a)
				if err != nil {
					return // the hub died
				}
				mu.Lock()
				switch res.StatusCode {
				case 200:
					acks = append(acks, acked{a, res.GetHeader("SIP-ETag").Value()})
				case 503:
					busy++
				}
				mu.Unlock()
			}
		}()
	}
	time.Sleep(300 * time.Millisecond)
	if l := nc.StreamLeader("KV_presencehub"); l >= 0 {
		nc.Stop(l)
	}
	time.Sleep(time.Duration(300+rand.IntN(600)) * time.Millisecond)
	_ = a.cmd.Process.Kill() // SIGKILL
	<-a.exited
	stop()
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	if len(acks) < 50 {
		t.Fatalf("only %d PUBLISHes acknowledged before the kill", len(acks))
	}
	// Refresh every acknowledged publication on B, 8 at a time.
	var lost atomic.Int64
	todo := make(chan acked)
	var vg sync.WaitGroup
	for range 8 {
		cl, err := sipclient.Dial(ctx, "ws://"+b.addr+"/ws", sipclient.Options{Token: tok})
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		vg.Add(1)
		go func() {
			defer vg.Done()
			for a := range todo {
				req, _ := cl.NewRequest(sip.PUBLISH, a.aor, a.aor)
				req.AppendHeader(sip.NewHeader("Event", "dialog"))
				req.AppendHeader(sip.NewHeader("SIP-If-Match", a.etag))
				res, err := cl.Do(ctx, req)
				if err != nil || res.StatusCode != 200 {
					lost.Add(1)
					t.Errorf("acknowledged publication %s (%s) on hub B: %v %v", a.aor, a.etag, res, err)
				}
			}
		}()
	}
	for _, a := range acks {
		todo <- a
	}
	close(todo)
	vg.Wait()
	t.Logf("%d PUBLISHes acknowledged by hub A (%d answered 503) before SIGKILL, %d refreshable on hub B", len(acks), busy, int64(len(acks))-lost.Load())
}

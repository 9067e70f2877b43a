package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/presencehub/presencehub/internal/sipclient"
	"github.com/presencehub/presencehub/server/auth"
)

// Crash safety under load: publishers run flat out, 4 sockets with 8
// PUBLISHes in flight each (as a PBX pipelines them: the hub processes them
// together and commits them in shared transactions), the hub is
// killed with SIGKILL at a random moment, restarted on the same database,
// and every PUBLISH that had been answered 200 must still be there with its
// entity-tag (a refresh with SIP-If-Match is answered 200, not 412).
func TestCrash_SIGKILLUnderLoad_KeepsEveryAcknowledgedPublish(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the binary twice")
	}
	db := filepath.Join(t.TempDir(), "crash.db")
	h := startHub(t, "PRESENCEHUB_DB="+db, "PRESENCEHUB_REQUESTS_PER_SECOND=100000")
	tok := mint(t, "pbx", func(c *auth.Claims) { c.Publish = []string{"*"} })

	type acked struct{ aor, etag string }
	var mu sync.Mutex
	var acks []acked
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		cl, err := sipclient.Dial(ctx, "ws://"+h.addr+"/ws", sipclient.Options{Token: tok})
		if err != nil {
			t.Fatal(err)
		}
		for g := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; ctx.Err() == nil; i++ {
					a := aor(fmt.Sprintf("%d%d%05d", w+1, g, i))
					res, err := publishEarly(ctx, cl, a)
					if err != nil {
						return // the hub died
					}
					if res.StatusCode == 200 {
						mu.Lock()
						acks = append(acks, acked{a, res.GetHeader("SIP-ETag").Value()})
						mu.Unlock()
					}
				}
			}()
		}
	}
	time.Sleep(time.Duration(300+rand.IntN(900)) * time.Millisecond)
	_ = h.cmd.Process.Kill() // SIGKILL: no shutdown, no flush
	<-h.exited
	cancel()
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	if len(acks) < 50 {
		t.Fatalf("only %d PUBLISHes acknowledged before the kill", len(acks))
	}

	h2 := startHub(t, "PRESENCEHUB_DB="+db, "PRESENCEHUB_REQUESTS_PER_SECOND=100000")
	cl, err := sipclient.Dial(context.Background(), "ws://"+h2.addr+"/ws", sipclient.Options{Token: tok})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	lost := 0
	for _, a := range acks {
		req, _ := cl.NewRequest(sip.PUBLISH, a.aor, a.aor)
		req.AppendHeader(sip.NewHeader("Event", "dialog"))
		req.AppendHeader(sip.NewHeader("SIP-If-Match", a.etag))
		res, err := cl.Do(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		if res.StatusCode != 200 {
			lost++
			t.Errorf("acknowledged publication %s (%s) after restart: %d %s", a.aor, a.etag, res.StatusCode, res.Reason)
		}
	}
	t.Logf("%d PUBLISHes acknowledged before SIGKILL, %d kept after restart", len(acks), len(acks)-lost)
}

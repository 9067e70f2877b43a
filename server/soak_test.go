package server_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/presencehub/presencehub/internal/sipclient"
	"github.com/presencehub/presencehub/server/auth"
	"github.com/presencehub/presencehub/server/servertest"
)

// TestSoak runs steady load with churn — watchers connect, subscribe,
// get NOTIFYs and disconnect; publishers keep changing state — and checks
// that heap and goroutine count stay flat. On demand only:
//
//	PRESENCEHUB_SOAK=5m go test -run TestSoak -v ./server/
func TestSoak(t *testing.T) {
	d, err := time.ParseDuration(os.Getenv("PRESENCEHUB_SOAK"))
	if err != nil {
		t.Skip("set PRESENCEHUB_SOAK=<duration> to run the soak test")
	}
	hub := servertest.Start(t, servertest.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	const resources, watchers = 200, 40
	var wg sync.WaitGroup
	// Publishers: 2 sockets changing dialog state of random resources.
	for p := 0; p < 2; p++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cl, err := sipclient.Dial(ctx, hub.WS, sipclient.Options{Token: hub.Token("pbx", func(c *auth.Claims) { c.Publish = []string{"*"} })})
			if err != nil {
				t.Error(err)
				return
			}
			defer cl.Close()
			etags := map[string]string{}
			states := []string{"early", "confirmed", "terminated"}
			for i := 0; ctx.Err() == nil; i++ {
				ext := fmt.Sprint(3000 + rand.IntN(resources))
				a := servertest.AOR(ext)
				req, _ := cl.NewRequest(sip.PUBLISH, a, a)
				req.AppendHeader(sip.NewHeader("Event", "dialog"))
				req.AppendHeader(sip.NewHeader("Expires", "120"))
				if e := etags[ext]; e != "" {
					req.AppendHeader(sip.NewHeader("SIP-If-Match", e))
				}
				withBody(req, "application/dialog-info+xml", dialogInfo(a, fmt.Sprint("call", i/3), states[i%3]))
				res, err := cl.Do(ctx, req)
				if err != nil {
					return
				}
				if h := res.GetHeader("SIP-ETag"); h != nil {
					etags[ext] = h.Value()
				} else {
					delete(etags, ext)
				}
				time.Sleep(2 * time.Millisecond)
			}
		}()
	}
	// Watchers: each lives 1–5 s with 10 subscriptions, then reconnects.
	for w := 0; w < watchers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sub := fmt.Sprint("w", w)
			for ctx.Err() == nil {
				cl, err := sipclient.Dial(ctx, hub.WS, sipclient.Options{Token: hub.Token(sub, nil)})
				if err != nil {
					return
				}
				for i := 0; i < 10; i++ {
					a := servertest.AOR(fmt.Sprint(3000 + rand.IntN(resources)))
					req, _ := cl.NewRequest(sip.SUBSCRIBE, servertest.AOR(sub), a)
					req.AppendHeader(sip.NewHeader("Event", "dialog"))
					req.AppendHeader(sip.NewHeader("Expires", "600"))
					if _, err := cl.Do(ctx, req); err != nil {
						break
					}
				}
				select {
				case <-ctx.Done():
				case <-time.After(time.Duration(1000+rand.IntN(4000)) * time.Millisecond):
				}
				cl.Close()
			}
		}()
	}
	type sample struct {
		at         time.Duration
		heap       uint64
		goroutines int
		subs       int
	}
	var samples []sample
	start := time.Now()
	tick := time.NewTicker(max(d/12, time.Second))
	defer tick.Stop()
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case <-tick.C:
			runtime.GC()
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			n := 0
			for _, c := range hub.Server.Notifier().Count() {
				n += c
			}
			s := sample{time.Since(start).Round(time.Second), ms.HeapInuse, runtime.NumGoroutine(), n}
			samples = append(samples, s)
			t.Logf("t=%-5v heap=%6.1f MiB goroutines=%5d subscriptions=%5d", s.at, float64(s.heap)/(1<<20), s.goroutines, s.subs)
		}
	}
	wg.Wait()
	if len(samples) < 4 {
		t.Fatalf("only %d samples", len(samples))
	}
	// After warm-up — terminated-dialog tombstones live 60 s and detached
	// subscriptions 32 s, so state fills up for about 90 s — growth must
	// stay within bounds.
	warm := min(d/2, 90*time.Second)
	base, last := samples[len(samples)-1], samples[len(samples)-1]
	for _, s := range samples {
		if s.at >= warm {
			base = s
			break
		}
	}
	if last.heap > base.heap*3/2+8<<20 {
		t.Errorf("heap grew from %d to %d bytes", base.heap, last.heap)
	}
	if last.goroutines > base.goroutines*3/2+50 {
		t.Errorf("goroutines grew from %d to %d", base.goroutines, last.goroutines)
	}
}

package server_test

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/emiago/sipgo/sip"
	"github.com/presencehub/presencehub/internal/sipclient"
	"github.com/presencehub/presencehub/server/servertest"
)

// subscribed is a watcher whose subscription to 1001's dialog state is active.
type subscribed struct {
	c *sipclient.Client
	w *watcher
}

func subscribeWatcher(t *testing.T, hub *servertest.Hub, as string, opts sipclient.Options) subscribed {
	t.Helper()
	w := &watcher{ch: make(chan *sip.Request, 100)}
	opts.Incoming = w.ch
	c := hub.Dial(testCtx(t), as, opts)
	if res := do(t, c, subscribeReq(t, c, as, "1001", "dialog")); res.StatusCode != 200 {
		t.Fatalf("SUBSCRIBE as %s: %d", as, res.StatusCode)
	}
	w.next(t) // the initial NOTIFY
	return subscribed{c, w}
}

// finalNotify asserts that the next request is the final NOTIFY with
// reason deactivated (RFC 6665 §4.1.3: the subscriber may retry at once).
func (s subscribed) finalNotify(t *testing.T) {
	t.Helper()
	n := s.w.next(t)
	if n.Method != sip.NOTIFY || header(n, "Subscription-State") != "terminated;reason=deactivated" {
		t.Errorf("got %s with Subscription-State %q, want the final NOTIFY terminated;reason=deactivated",
			n.Method, header(n, "Subscription-State"))
	}
}

// closedGoingAway asserts that the hub closed the socket with 1001.
func (s subscribed) closedGoingAway(t *testing.T) {
	t.Helper()
	select {
	case <-s.c.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("socket still open after shutdown")
	}
	if code := websocket.CloseStatus(s.c.Err()); code != websocket.StatusGoingAway {
		t.Errorf("socket closed with %d (%v), want 1001", code, s.c.Err())
	}
}

func TestShutdown_FinalNotifyToEverySubscriberThenClose1001(t *testing.T) {
	hub := servertest.Start(t, servertest.Options{})
	newPublisher(t, hub, "1001").state("confirmed")
	var watchers []subscribed
	for _, as := range []string{"2001", "2002", "2003", "2004"} {
		watchers = append(watchers, subscribeWatcher(t, hub, as, sipclient.Options{}))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := time.Now()
	if err := hub.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Shutdown took %v with every watcher answering", d)
	}
	for _, w := range watchers {
		w.finalNotify(t)
		w.closedGoingAway(t)
		w.w.none(t, 0) // nothing after the final NOTIFY
	}
	if err := hub.Server.Compositor().Ready(context.Background()); err == nil {
		t.Error("store still answers after Shutdown: it was not closed")
	}
}

func TestShutdown_BoundedByContextWhenAWatcherNeverAnswers(t *testing.T) {
	hub := servertest.Start(t, servertest.Options{})
	good := subscribeWatcher(t, hub, "2001", sipclient.Options{})
	silent := subscribeWatcher(t, hub, "2002", sipclient.Options{OnRequest: func(req *sip.Request) int {
		if strings.HasPrefix(header(req, "Subscription-State"), "terminated") {
			return 0 // never answers the final NOTIFY
		}
		return 200
	}})

	ctx, cancel := context.WithTimeout(context.Background(), 800*time.Millisecond)
	defer cancel()
	start := time.Now()
	done := make(chan error, 1)
	go func() { done <- hub.Shutdown(ctx) }()

	good.finalNotify(t)
	silent.finalNotify(t)
	// While it drains, the hub takes no new connections and is not ready.
	if _, err := sipclient.Dial(testCtx(t), hub.WS, sipclient.Options{Token: hub.Token("2003", nil)}); err == nil {
		t.Error("a new connection was accepted while draining")
	}
	if res, err := http.Get(hub.URL + "/readyz"); err != nil || res.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("/readyz while draining: %v %v, want 503", res.StatusCode, err)
	} else {
		res.Body.Close()
	}

	select {
	case err := <-done:
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Shutdown = %v, want the context's deadline", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Shutdown not bounded by its context")
	}
	if d := time.Since(start); d < 700*time.Millisecond || d > 3*time.Second {
		t.Errorf("Shutdown returned after %v, want about the context's 800ms", d)
	}
	good.closedGoingAway(t)
	silent.closedGoingAway(t)
}

func TestShutdown_UnderLoad_EverySubscriptionEndsWithOneFinalNotify(t *testing.T) {
	const conns, perConn = 8, 25
	hub := servertest.Start(t, servertest.Options{})
	ctx := testCtx(t)
	type sub struct {
		last  string // Subscription-State of the newest NOTIFY
		after int    // NOTIFYs received after the final one
	}
	var mu sync.Mutex
	subs := map[string]*sub{} // by Call-ID
	var clients []*sipclient.Client
	for i := 0; i < conns; i++ {
		as := "2" + strconv.Itoa(100+i)
		c := hub.Dial(ctx, as, sipclient.Options{OnRequest: func(req *sip.Request) int {
			mu.Lock()
			defer mu.Unlock()
			s := subs[req.CallID().Value()]
			if s == nil {
				s = &sub{}
				subs[req.CallID().Value()] = s
			}
			if strings.HasPrefix(s.last, "terminated") {
				s.after++
			}
			s.last = header(req, "Subscription-State")
			return 200
		}})
		clients = append(clients, c)
		for j := 0; j < perConn; j++ {
			ext := strconv.Itoa(1000 + j)
			if res := do(t, c, subscribeReq(t, c, as, ext, "dialog")); res.StatusCode != 200 {
				t.Fatalf("SUBSCRIBE %s→%s: %d", as, ext, res.StatusCode)
			}
		}
	}
	// Publishers keep changing state while the hub shuts down.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for j := 0; j < 5; j++ {
		p := newPublisher(t, hub, strconv.Itoa(1000+j))
		wg.Add(1)
		go func() {
			defer wg.Done()
			states := []string{"early", "confirmed", "terminated"}
			for k := 0; ; k++ {
				select {
				case <-stop:
					return
				default:
				}
				req := withBody(newReq(t, p.c, sip.PUBLISH, p.ext, p.ext, "Event", "dialog", "Expires", "600"),
					"application/dialog-info+xml", dialogInfo(servertest.AOR(p.ext), "call"+strconv.Itoa(k/3), states[k%3]))
				if _, err := p.c.Do(ctx, req); err != nil {
					return // the hub has gone
				}
			}
		}()
	}
	time.Sleep(100 * time.Millisecond)
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := time.Now()
	err := hub.Shutdown(sctx)
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatalf("Shutdown under load: %v after %v", err, time.Since(start))
	}
	for _, c := range clients {
		select {
		case <-c.Done():
		case <-time.After(5 * time.Second):
			t.Fatal("a watcher's socket is still open")
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(subs) != conns*perConn {
		t.Fatalf("%d subscriptions got NOTIFYs, want %d", len(subs), conns*perConn)
	}
	for id, s := range subs {
		if s.last != "terminated;reason=deactivated" || s.after != 0 {
			t.Errorf("subscription %s: last Subscription-State %q, %d NOTIFYs after the final one", id, s.last, s.after)
		}
	}
	t.Logf("%d subscriptions drained in %v", len(subs), time.Since(start))
}

package server_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/emiago/sipgo/sip"
	"github.com/presencehub/presencehub/internal/sipclient"
	"github.com/presencehub/presencehub/server"
	"github.com/presencehub/presencehub/server/auth"
	"github.com/presencehub/presencehub/server/servertest"
)

// A socket that stops reading while NOTIFYs are due is closed within a
// bounded time; a healthy watcher keeps getting its NOTIFYs meanwhile.
func TestSlowConsumer_ClosedOthersUnaffected(t *testing.T) {
	hub := servertest.Start(t, servertest.Options{Configure: func(c *server.Config) {
		// The hub closes a socket whose pong does not come within the
		// ping interval: the slow socket is closed about a second after it
		// stops reading. While it subscribes, a pong waits behind the
		// SUBSCRIBEs the hub has not read yet: the socket keeps at most a
		// few of them outstanding (below), so the pong is read within a
		// few SUBSCRIBEs' time, never behind hundreds.
		c.PingInterval = time.Second
		c.RequestsPerSecond = 1000
	}})
	ctx := testCtx(t)
	slow, _, err := websocket.Dial(ctx, hub.WS+"?access_token="+hub.Token("slow", nil), &websocket.DialOptions{Subprotocols: []string{"sip"}})
	if err != nil {
		t.Fatal(err)
	}
	defer slow.CloseNow()
	// It reads while subscribing, then stops reading for good (and so stops
	// answering pings and NOTIFYs) while the hub still has NOTIFYs for it.
	const outstanding = 8
	stopReading, quit := make(chan struct{}), make(chan struct{})
	readerDone := make(chan struct{})
	answers := make(chan struct{}, outstanding) // a slot per SUBSCRIBE not yet answered
	go func() {
		defer close(readerDone)
		for {
			select {
			case <-stopReading:
				<-quit
				return
			default:
			}
			_, data, err := slow.Read(ctx)
			if err != nil {
				return
			}
			// While it reads, it answers NOTIFYs like a phone would.
			msg, err := sip.ParseMessage(data)
			if err != nil {
				continue
			}
			switch m := msg.(type) {
			case *sip.Request:
				_ = slow.Write(ctx, websocket.MessageText, []byte(sip.NewResponseFromRequest(m, 200, "OK", nil).String()))
			case *sip.Response:
				if m.CSeq() != nil && m.CSeq().MethodName == sip.SUBSCRIBE {
					select {
					case <-answers:
					default:
					}
				}
			}
		}
	}()
	defer func() { close(quit); slow.CloseNow(); <-readerDone }()
	const resources = 300
	for i := 0; i < resources; i++ {
		select {
		case answers <- struct{}{}:
		case <-readerDone:
			t.Fatalf("the slow socket ended while subscribing (%d sent)", i)
		case <-ctx.Done():
			t.Fatalf("SUBSCRIBE %d: no room: %v", i, ctx.Err())
		}
		sub := fmt.Sprintf("SUBSCRIBE sip:%d@hub.test SIP/2.0\r\nVia: SIP/2.0/WS s.invalid;branch=z9hG4bKslow%d\r\nFrom: <sip:slow@hub.test>;tag=f%d\r\n"+
			"To: <sip:%d@hub.test>\r\nCall-ID: slow-%d\r\nCSeq: 1 SUBSCRIBE\r\nEvent: dialog\r\nExpires: 600\r\nContact: <sip:s@s.invalid;transport=ws>\r\nContent-Length: 0\r\n\r\n",
			5000+i, i, i, 5000+i, i)
		if err := slow.Write(ctx, websocket.MessageText, []byte(sub)); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "the slow watcher's subscriptions", func() bool { return len(hub.Server.Notifier().List("slow")) == resources })
	allDetached := func() bool {
		for _, s := range hub.Server.Notifier().List("slow") {
			if s.Attached {
				return false
			}
		}
		return true
	}
	close(stopReading)
	stopped := time.Now()
	// When the hub lets go of the slow socket, measured from the moment it
	// stopped reading (not including the publishing below).
	closedAfter, watchDone := make(chan time.Duration, 1), make(chan struct{})
	defer close(watchDone)
	go func() {
		for !allDetached() {
			select {
			case <-watchDone:
				return
			case <-time.After(10 * time.Millisecond):
			}
		}
		closedAfter <- time.Since(stopped)
	}()
	// A healthy watcher of one of the same resources:
	w, opts := newWatcher()
	good := hub.Dial(ctx, "good", opts)
	if res := do(t, good, subscribeReq(t, good, "good", "5000", "dialog")); res.StatusCode != 200 {
		t.Fatalf("SUBSCRIBE: %d", res.StatusCode)
	}
	w.next(t)

	pc := hub.Dial(ctx, "", sipclient.Options{Token: hub.Token("pbx", func(c *auth.Claims) { c.Publish = []string{"*"} })})
	states := []string{"early", "confirmed"}
	for round := 0; round < 4; round++ {
		for i := 0; i < resources; i++ {
			ext := fmt.Sprint(5000 + i)
			req := withBody(newReq(t, pc, sip.PUBLISH, "pbx", ext, "Event", "dialog"), "application/dialog-info+xml",
				dialogInfo(servertest.AOR(ext), "d", states[round%2]))
			if res := do(t, pc, req); res.StatusCode != 200 {
				t.Fatalf("PUBLISH: %d", res.StatusCode)
			}
		}
		// The healthy watcher sees the newest state of its resource promptly.
		deadline := time.After(3 * time.Second)
		for {
			select {
			case n := <-w.ch:
				if lamp(n.Body()) == states[round%2] {
					goto next
				}
			case <-deadline:
				t.Fatalf("round %d: healthy watcher starved", round)
			}
		}
	next:
	}
	select {
	case d := <-closedAfter:
		// Closed by the missing pong (about two ping intervals), not left
		// to the NOTIFY transactions' Timer F (32 s).
		if d > 10*time.Second {
			t.Errorf("slow consumer closed %v after it stopped reading", d)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the slow socket is still attached 30 s after it stopped reading")
	}
}

package server_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/emiago/sipgo/sip"
	"github.com/presencehub/presencehub/internal/sipclient"
	"github.com/presencehub/presencehub/server"
	"github.com/presencehub/presencehub/server/auth"
	"github.com/presencehub/presencehub/server/servertest"
)

// Every limit refuses with a clear answer (503 + Retry-After, 400, or a
// close) and the hub keeps serving.
func TestLimits(t *testing.T) {
	tests := []struct {
		name      string
		configure func(*server.Config)
		run       func(t *testing.T, hub *servertest.Hub)
		sameIP    bool // the limit holds for every client on 127.0.0.1
	}{
		{"connections per IP → HTTP 503", func(c *server.Config) { c.MaxConnsPerIP = 2 }, func(t *testing.T, hub *servertest.Hub) {
			hub.Dial(testCtx(t), "1001", sipclient.Options{})
			hub.Dial(testCtx(t), "1002", sipclient.Options{})
			_, resp, err := websocket.Dial(testCtx(t), hub.WS+"?access_token="+hub.Token("1003", nil), &websocket.DialOptions{Subprotocols: []string{"sip"}})
			if err == nil || resp == nil || resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
				t.Fatalf("third connection: %v %v", resp, err)
			}
		}, true},
		{"header fields → 400", func(c *server.Config) { c.MaxHeaders = 12 }, func(t *testing.T, hub *servertest.Hub) {
			c := hub.Dial(testCtx(t), "1001", sipclient.Options{})
			req := newReq(t, c, sip.OPTIONS, "1001", "1001")
			for i := 0; i < 20; i++ {
				req.AppendHeader(sip.NewHeader(fmt.Sprintf("X-Pad-%d", i), "x"))
			}
			if res := do(t, c, req); res.StatusCode != 400 {
				t.Fatalf("got %d", res.StatusCode)
			}
		}, false},
		{"requests per second → 503 + Retry-After", func(c *server.Config) { c.RequestsPerSecond = 5 }, func(t *testing.T, hub *servertest.Hub) {
			c := hub.Dial(testCtx(t), "1001", sipclient.Options{})
			refused := 0
			for i := 0; i < 40; i++ {
				res := do(t, c, newReq(t, c, sip.OPTIONS, "1001", "1001"))
				if res.StatusCode == 503 && header(res, "Retry-After") != "" {
					refused++
				}
			}
			if refused == 0 {
				t.Fatal("no request refused")
			}
			time.Sleep(400 * time.Millisecond) // the bucket refills: served again
			if res := do(t, c, newReq(t, c, sip.OPTIONS, "1001", "1001")); res.StatusCode != 200 {
				t.Fatalf("after the burst: %d", res.StatusCode)
			}
		}, false},
		{"a token publishing for others is not throttled as a browser", func(c *server.Config) { c.RequestsPerSecond = 5 }, func(t *testing.T, hub *servertest.Hub) {
			tok := hub.Token("pbx", func(cl *auth.Claims) { cl.Publish = []string{"*"} })
			c := hub.Dial(testCtx(t), "", sipclient.Options{Token: tok})
			for i := 0; i < 40; i++ {
				if res := do(t, c, newReq(t, c, sip.OPTIONS, "pbx", "pbx")); res.StatusCode != 200 {
					t.Fatalf("request %d of a publisher token: %d %s", i, res.StatusCode, res.Reason)
				}
			}
		}, false},
		{"publisher requests per second → 503 + Retry-After", func(c *server.Config) { c.RequestsPerSecond, c.PublisherRequestsPerSecond = 2, 5 }, func(t *testing.T, hub *servertest.Hub) {
			tok := hub.Token("pbx", func(cl *auth.Claims) { cl.Publish = []string{"1001", "1002"} })
			c := hub.Dial(testCtx(t), "", sipclient.Options{Token: tok})
			refused := 0
			for i := 0; i < 40; i++ {
				res := do(t, c, newReq(t, c, sip.OPTIONS, "pbx", "pbx"))
				if res.StatusCode == 503 && header(res, "Retry-After") != "" {
					refused++
				}
			}
			if refused == 0 || refused > 30 {
				t.Fatalf("%d of 40 requests refused; want some, at the publisher rate (burst 20)", refused)
			}
		}, false},
		{"publications per resource → 503", func(c *server.Config) { c.MaxPubsPerResource = 2 }, func(t *testing.T, hub *servertest.Hub) {
			c := hub.Dial(testCtx(t), "1001", sipclient.Options{})
			codes := []string{}
			for i := 0; i < 3; i++ {
				req := withBody(newReq(t, c, sip.PUBLISH, "1001", "1001", "Event", "dialog"), "application/dialog-info+xml",
					dialogInfo(servertest.AOR("1001"), fmt.Sprint(i), "early"))
				res := do(t, c, req)
				codes = append(codes, fmt.Sprint(res.StatusCode, " ", res.Reason))
			}
			if want := "[200 OK 200 OK 503 Service Unavailable - too many publications for this resource]"; fmt.Sprint(codes) != want {
				t.Fatalf("codes %v, want %s", codes, want)
			}
		}, false},
		{"dialogs per resource → 413", func(c *server.Config) { c.MaxDialogsPerResource = 1 }, func(t *testing.T, hub *servertest.Hub) {
			c := hub.Dial(testCtx(t), "1001", sipclient.Options{})
			codes := []string{}
			for i := 0; i < 2; i++ {
				req := withBody(newReq(t, c, sip.PUBLISH, "1001", "1001", "Event", "dialog"), "application/dialog-info+xml",
					dialogInfo(servertest.AOR("1001"), fmt.Sprint(i), "early"))
				res := do(t, c, req)
				codes = append(codes, fmt.Sprint(res.StatusCode, " ", res.Reason))
			}
			if want := "[200 OK 413 Request Entity Too Large - too many dialogs for this resource]"; fmt.Sprint(codes) != want {
				t.Fatalf("codes %v, want %s", codes, want)
			}
			if res := do(t, c, newReq(t, c, sip.OPTIONS, "1001", "1001")); res.StatusCode != 200 {
				t.Fatalf("a bound is no store fault: OPTIONS after it %d", res.StatusCode)
			}
		}, false},
		{"subscriptions per connection → 503", func(c *server.Config) { c.MaxSubsPerConn = 2 }, func(t *testing.T, hub *servertest.Hub) {
			c := hub.Dial(testCtx(t), "2001", sipclient.Options{})
			codes := []int{}
			for _, ext := range []string{"1001", "1002", "1003"} {
				codes = append(codes, do(t, c, subscribeReq(t, c, "2001", ext, "dialog")).StatusCode)
			}
			if fmt.Sprint(codes) != "[200 200 503]" {
				t.Fatalf("codes %v", codes)
			}
		}, false},
		{"publications per user → 503", func(c *server.Config) { c.MaxPubsPerUser = 2 }, func(t *testing.T, hub *servertest.Hub) {
			c := hub.Dial(testCtx(t), "1001", sipclient.Options{})
			codes := []int{}
			for i := 0; i < 3; i++ {
				req := withBody(newReq(t, c, sip.PUBLISH, "1001", "1001", "Event", "dialog"), "application/dialog-info+xml",
					dialogInfo(servertest.AOR("1001"), fmt.Sprint(i), "early"))
				codes = append(codes, do(t, c, req).StatusCode)
			}
			if fmt.Sprint(codes) != "[200 200 503]" {
				t.Fatalf("codes %v", codes)
			}
		}, false},
		{"XML nesting depth → 400", nil, func(t *testing.T, hub *servertest.Hub) {
			c := hub.Dial(testCtx(t), "1001", sipclient.Options{})
			deep := `<?xml version="1.0"?><presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:1001@hub.test">` +
				strings.Repeat("<x>", 100) + strings.Repeat("</x>", 100) + `</presence>`
			req := withBody(newReq(t, c, sip.PUBLISH, "1001", "1001", "Event", "presence"), "application/pidf+xml", []byte(deep))
			if res := do(t, c, req); res.StatusCode != 400 {
				t.Fatalf("got %d %s", res.StatusCode, res.Reason)
			}
		}, false},
		{"no token within the unauthenticated lifetime → close 1008", func(c *server.Config) { c.UnauthTimeout = 300 * time.Millisecond }, func(t *testing.T, hub *servertest.Hub) {
			c := hub.Dial(testCtx(t), "", sipclient.Options{})
			select {
			case <-c.Done():
				if websocket.CloseStatus(c.Err()) != websocket.StatusPolicyViolation {
					t.Fatalf("closed with %v", c.Err())
				}
			case <-time.After(5 * time.Second):
				t.Fatal("unauthenticated connection still open")
			}
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hub := servertest.Start(t, servertest.Options{Configure: tt.configure})
			tt.run(t, hub)
			if tt.sameIP {
				return
			}
			// The hub keeps serving others.
			c := hub.Dial(testCtx(t), "9999", sipclient.Options{})
			if res := do(t, c, newReq(t, c, sip.OPTIONS, "9999", "9999")); res.StatusCode != 200 && res.StatusCode != 503 {
				t.Fatalf("another client after the limit: %d", res.StatusCode)
			}
		})
	}
}

package server_test

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/presencehub/presencehub/internal/sipclient"
	"github.com/presencehub/presencehub/server"
	"github.com/presencehub/presencehub/server/auth"
	"github.com/presencehub/presencehub/server/servertest"
)

const mwiType = "application/simple-message-summary"

// A voicemail server publishes message summaries over WebSocket and plain
// SIP (RFC 3842); a watcher subscribes alone or through a list; an
// unchanged summary sends nothing; the newest publication wins.
func TestMessageSummary_PublishSubscribeDedupeAndLists(t *testing.T) {
	hub := servertest.Start(t, servertest.Options{Configure: func(c *server.Config) {
		c.SIPTrusted = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
	}})
	udpAddr, _ := startPBXListener(t, hub)
	vm := hub.Dial(testCtx(t), "", sipclient.Options{Token: hub.Token("vm", func(c *auth.Claims) { c.Publish = []string{"*"} })})
	publish := func(ext, body string, hdrs ...string) *sip.Response {
		t.Helper()
		req := withBody(newReq(t, vm, sip.PUBLISH, "vm", ext, append([]string{"Event", "message-summary", "Expires", "3600"}, hdrs...)...), mwiType, []byte(body))
		return do(t, vm, req)
	}
	if res := publish("1001", "Messages-Waiting: maybe\r\n"); res.StatusCode != 400 {
		t.Fatalf("bad summary: %d", res.StatusCode)
	}
	if res := publish("1001", "Messages-Waiting: yes\r\n"); res.StatusCode != 200 {
		t.Fatalf("PUBLISH: %d %s", res.StatusCode, res.Reason)
	}

	w, opts := newWatcher()
	c := hub.Dial(testCtx(t), "1001", opts)
	if res := do(t, c, subscribeReq(t, c, "1001", "1001", "message-summary", "Accept", mwiType)); res.StatusCode != 200 {
		t.Fatalf("SUBSCRIBE: %d %s", res.StatusCode, res.Reason)
	}
	n := w.next(t)
	if header(n, "Content-Type") != mwiType || string(n.Body()) != "Messages-Waiting: yes\r\n" {
		t.Fatalf("first NOTIFY: %s %q", header(n, "Content-Type"), n.Body())
	}
	res := publish("1001", "Messages-Waiting: yes\r\nMessage-Account: sip:1001@hub.test\r\nVoice-Message: 2/8 (0/2)\r\n")
	if res.StatusCode != 200 {
		t.Fatalf("PUBLISH: %d", res.StatusCode)
	}
	if got := string(w.next(t).Body()); got != "Messages-Waiting: yes\r\nMessage-Account: sip:1001@hub.test\r\nVoice-Message: 2/8 (0/2)\r\n" {
		t.Fatalf("after 2 new messages: %q", got)
	}
	// The same summary again (any line ends and case): nothing to send.
	publish("1001", "messages-waiting: YES\nmessage-account: sip:1001@hub.test\nvoice-message: 2/8 (0/2)\n", "SIP-If-Match", header(res, "SIP-ETag"))
	w.none(t, 300*time.Millisecond)

	// Plain SIP from a trusted PBX: the newest publication wins.
	msg := "PUBLISH sip:1001@hub.test SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKmwi1\r\nFrom: <sip:vm@hub.test>;tag=v\r\nTo: <sip:1001@hub.test>\r\n" +
		"Call-ID: mwi1\r\nCSeq: 1 PUBLISH\r\nEvent: message-summary\r\nExpires: 3600\r\nContent-Type: " + mwiType + "\r\nContent-Length: 0\r\n\r\nMessages-Waiting: no\r\nVoice-Message: 0/10\r\n"
	if res := exchange(t, "udp", udpAddr, []byte(msg)); res.StatusCode != 200 {
		t.Fatalf("plain-SIP PUBLISH: %d %s", res.StatusCode, res.Reason)
	}
	if got := string(w.next(t).Body()); got != "Messages-Waiting: no\r\nVoice-Message: 0/10\r\n" {
		t.Fatalf("after the PBX's summary: %q", got)
	}

	// A message-summary list: one part per account.
	putList(t, hub, "mwi", `{"event": "message-summary", "members": ["1001", "1002"]}`)
	lw, lopts := newWatcher()
	lc := hub.Dial(testCtx(t), "2000", lopts)
	if res := do(t, lc, subscribeReq(t, lc, "2000", "mwi", "message-summary", "Accept", "multipart/related, application/rlmi+xml, "+mwiType, "Supported", "eventlist")); res.StatusCode != 200 {
		t.Fatalf("list SUBSCRIBE: %d %s", res.StatusCode, res.Reason)
	}
	ln := parseRLMI(t, lw.next(t))
	if got := string(ln.part(t, "1001")); !strings.HasPrefix(got, "Messages-Waiting: no") || ln.resources[servertest.AOR("1002")].state != "pending" {
		t.Fatalf("list: 1001 %q, 1002 %+v", got, ln.resources[servertest.AOR("1002")])
	}
}

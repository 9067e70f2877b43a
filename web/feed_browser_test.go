package web_test

import (
	"strings"
	"testing"

	"github.com/presencehub/presencehub/server"
	"github.com/presencehub/presencehub/server/servertest"
)

// A dashboard developer follows lamps with EventSource and nothing else: a
// page of another origin (allowed by --origins) in Chromium opens the hub's
// state feed and shows a lamp ringing, busy and idle as a PBX publishes.
func TestFeed_Chromium_EventSourceFollowsALamp(t *testing.T) {
	b := startBrowser(t)
	pages := startPageServer(t)
	hub := servertest.Start(t, servertest.Options{Configure: func(c *server.Config) {
		c.OriginPatterns = []string{pages.Listener.Addr().String()}
	}})
	pub := newPublisher(t, hub)
	pub.publish("1001", "presence", pidf("1001", "open", "front desk", false))

	b.do(t, "open", map[string]any{"page": "board", "url": pages.URL + "/feed-wallboard.html"})
	b.eval(t, "board", `(url) => window.board.start(url)`, hub.URL+"/api/feed?ext=1001,1002&access_token="+hub.Token("wallboard", nil))
	b.waitLamp(t, "board", "1001", "idle")
	b.waitLamp(t, "board", "1002", "offline")

	pub.publish("1001", "dialog", dialogInfo("1001", dialog("c1", "recipient", "early", "sip:2001@hub.test", "Alice")))
	l := b.waitLamp(t, "board", "1001", "ringing")
	if !strings.Contains(l.Text, "Alice (2001)") || !strings.Contains(l.Text, "front desk") {
		t.Errorf("ringing lamp %+v: want the caller and the note", l)
	}
	pub.publish("1001", "dialog", dialogInfo("1001", dialog("c1", "recipient", "confirmed", "sip:2001@hub.test", "Alice")))
	b.waitLamp(t, "board", "1001", "busy")
	pub.publish("1001", "dialog", dialogInfo("1001", dialog("c1", "recipient", "terminated", "sip:2001@hub.test", "Alice")))
	b.waitLamp(t, "board", "1001", "idle")

	// What the page received: one snapshot, then exactly one event per change.
	var events []struct {
		Type  string   `json:"type"`
		ID    string   `json:"id"`
		Lamps []string `json:"lamps"`
	}
	decode(t, b.eval(t, "board", `() => window.board.events`, nil), &events)
	var got []string
	for _, e := range events {
		got = append(got, e.Type+" "+strings.Join(e.Lamps, ","))
	}
	want := []string{"snapshot 1001:idle,1002:offline", "state 1001:ringing", "state 1001:busy", "state 1001:idle"}
	if strings.Join(got, "; ") != strings.Join(want, "; ") {
		t.Errorf("events %q, want %q", got, want)
	}
	checkPageLog(t, b, "board", false)
	b.eval(t, "board", `() => window.board.stop()`, nil)
}

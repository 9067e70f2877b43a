package interop

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/emiago/sipgo/sip"
	"github.com/presencehub/presencehub/internal/sipclient"
	"github.com/presencehub/presencehub/server/auth"
	"github.com/presencehub/presencehub/server/servertest"
)

// listEvent is a "list" line of list-subscribe.mjs: the list's state after a NOTIFY, as the
// console's module web/static/rlmi.js keeps it.
type listEvent struct {
	URI       string            `json:"uri"`
	Version   int               `json:"version"`
	FullState bool              `json:"fullState"`
	Resync    bool              `json:"resync"`
	Lamps     map[string]string `json:"lamps"`
	Peers     map[string]string `json:"peers"`
	States    map[string]string `json:"states"`
}

func listOf(t *testing.T, e Event) listEvent {
	t.Helper()
	var l listEvent
	if err := json.Unmarshal([]byte(e.Line), &l); err != nil {
		t.Fatalf("list event %s: %v", e.Line, err)
	}
	return l
}

// listLamps waits for a list event whose lamps include want (and whose other members are in
// the given instance states).
func listLamps(c *Client, want map[string]string) func(Event) bool {
	return func(e Event) bool {
		if e.Ev != "list" {
			return false
		}
		var l listEvent
		if json.Unmarshal([]byte(e.Line), &l) != nil {
			return false
		}
		for k, v := range want {
			if l.Lamps[k] != v {
				return false
			}
		}
		return true
	}
}

// Real JsSIP and SIP.js (in Node) hold a list subscription, to a stored list and to an RFC 5367
// request-contained list; the console's module rlmi.js reads every NOTIFY they receive and
// follows the members through ringing, answer and hang-up, a member the token may not watch
// staying terminated/rejected. The libraries are unchanged: only Supported: eventlist (and for
// RFC 5367, Require, Content-Disposition and a body) are added through their options.
func TestList_JsSIPAndSIPjsFollowStoredAndRFC5367ListsWithRLMIModule(t *testing.T) {
	Require(t)
	hub := servertest.Start(t, servertest.Options{}) // default expiries: the steps may take seconds
	ctx := t.Context()
	req, err := http.NewRequestWithContext(ctx, "PUT", hub.URL+"/api/lists/team",
		strings.NewReader(`{"event": "dialog", "members": ["1001", "1002", "1003"], "names": {"1001": "Reception"}}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+hub.Token("ops", func(c *auth.Claims) { c.Admin = true }))
	res, err := http.DefaultClient.Do(req)
	if err != nil || res.StatusCode != 201 {
		t.Fatalf("PUT /api/lists/team: %v %v", res, err)
	}
	res.Body.Close()
	pbx, err := sipclient.Dial(ctx, hub.WS, sipclient.Options{Token: hub.Token("pbx", func(c *auth.Claims) { c.Publish = []string{"*"} })})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pbx.Close)
	// A new dialog id per call: a dialog that ended stays ended (docs/protocol.md).
	publish := func(ext string, call int, state, caller string) {
		t.Helper()
		aor := servertest.AOR(ext)
		r, err := pbx.NewRequest(sip.PUBLISH, aor, aor)
		if err != nil {
			t.Fatal(err)
		}
		r.AppendHeader(sip.NewHeader("Event", "dialog"))
		r.AppendHeader(sip.NewHeader("Expires", "60"))
		r.AppendHeader(sip.NewHeader("Content-Type", "application/dialog-info+xml"))
		r.SetBody([]byte(fmt.Sprintf(`<?xml version="1.0"?><dialog-info xmlns="urn:ietf:params:xml:ns:dialog-info" version="0" state="full" entity="%s">`+
			`<dialog id="d%s-%d" call-id="c%s-%d" direction="recipient"><state>%s</state><remote><identity display="Carol">%s</identity></remote></dialog></dialog-info>`,
			aor, ext, call, ext, call, state, caller)))
		res, err := pbx.Do(context.WithoutCancel(ctx), r)
		if err != nil || res.StatusCode != 200 {
			t.Fatalf("PUBLISH %s %s: %v %v", ext, state, res, err)
		}
	}
	publish("1002", 0, "terminated", "sip:2001@hub.test") // 1002 had a call: active and idle, not pending

	for i, tc := range []struct{ lib, how string }{
		{"jssip", "stored"}, {"sipjs", "stored"}, {"jssip", "rfc5367"}, {"sipjs", "rfc5367"},
	} {
		t.Run(tc.lib+"_"+tc.how, func(t *testing.T) {
			call := i + 1
			publish("1001", call, "confirmed", "sip:2001@hub.test")
			tok := hub.Token("2000", func(c *auth.Claims) { c.Subscribe = []string{"1001", "1002"} })
			which := []string{"--target", "team"}
			if tc.how == "rfc5367" {
				which = []string{"--members", "1001,1002,1003"}
			}
			c := StartWith(t, Options{Name: tc.lib + "-list"}, "list-subscribe.mjs",
				withToken(hub.WS, tok, "2000", append([]string{"--lib", tc.lib}, which...)...)...)
			first := listOf(t, c.Expect("full state", startup, ev("list")))
			wantURI := map[string]string{"stored": "sip:team@hub.test", "rfc5367": "sip:rls@hub.test"}[tc.how]
			if !first.FullState || first.Version != 0 || first.URI != wantURI || first.Lamps["1001"] != "busy" ||
				first.Peers["1001"] != "Carol (2001)" || first.Lamps["1002"] != "idle" || first.States["1003"] != "terminated/rejected" {
				t.Fatalf("first NOTIFY as read by rlmi.js: %+v", first)
			}
			publish("1002", call, "early", "sip:2002@hub.test")
			l := listOf(t, c.Expect("1002 ringing", short, listLamps(c, map[string]string{"1002": "ringing"})))
			if l.FullState || l.Resync || l.Version != 1 || l.Lamps["1001"] != "busy" || l.Peers["1002"] != "Carol (2002)" {
				t.Errorf("after 1002 rings: %+v", l)
			}
			publish("1002", call, "confirmed", "sip:2002@hub.test")
			c.Expect("1002 answered", short, listLamps(c, map[string]string{"1002": "busy", "1001": "busy"}))
			publish("1001", call, "terminated", "sip:2001@hub.test")
			l = listOf(t, c.Expect("1001 hung up", short, listLamps(c, map[string]string{"1001": "idle", "1002": "busy"})))
			if l.Resync || l.States["1003"] != "terminated/rejected" {
				t.Errorf("after 1001 hangs up: %+v", l)
			}
			if errs := c.Seen(ev("error")); len(errs) > 0 {
				t.Errorf("errors: %v", errs)
			}
			publish("1002", call, "terminated", "sip:2002@hub.test")
			c.Expect("1002 hung up", short, listLamps(c, map[string]string{"1001": "idle", "1002": "idle"}))
			c.Send("quit", nil)
			if code := c.Wait(short); code != ExitOK {
				t.Errorf("exit %d", code)
			}
		})
	}
}

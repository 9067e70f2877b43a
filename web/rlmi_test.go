package web_test

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/presencehub/presencehub/internal/sipclient"
	"github.com/presencehub/presencehub/server/auth"
	"github.com/presencehub/presencehub/server/servertest"
)

var updateFixtures = flag.Bool("update-fixtures", false,
	"write the hub's list NOTIFYs to web/jstest/testdata (fixtures of rlmi.test.js)")

// notifyFixture is one list NOTIFY as the hub sent it: what web/jstest/rlmi.test.js parses.
type notifyFixture struct {
	Step              string `json:"step"`
	SubscriptionState string `json:"subscriptionState"`
	ContentType       string `json:"contentType"`
	Body              string `json:"body"`
}

// The boundary (and so the start Content-ID) is random per subscription; the hub's <since>
// stamp is the wall clock.
var (
	boundaryToken = regexp.MustCompile(`rlmi-[0-9A-Za-z]+`)
	sinceStamp    = regexp.MustCompile(`(<since xmlns="urn:x-presencehub:dialog">)[^<]*(</since>)`)
)

// fixtureSince is the normalised stamp: what rlmi.test.js expects to read.
const fixtureSince = "2026-01-02T03:04:05.678Z"

func normalizeFixture(f notifyFixture) notifyFixture {
	f.ContentType = boundaryToken.ReplaceAllString(f.ContentType, "rlmi-B0UNDARY")
	f.Body = boundaryToken.ReplaceAllString(f.Body, "rlmi-B0UNDARY")
	f.Body = sinceStamp.ReplaceAllString(f.Body, "${1}"+fixtureSince+"${2}")
	return f
}

// The fixtures of the JavaScript list parser are the hub's real NOTIFYs: this test drives a
// stored dialog list and an RFC 5367 presence list through a real hub and compares what arrives
// with web/jstest/testdata/*.json (only the random boundary and the clock's <since> stamps are normalised), so a change of the
// hub's list format fails here until the fixtures, and so the module's tests, follow it.
func TestRLMIFixtures_AreWhatTheHubSends(t *testing.T) {
	hub := servertest.Start(t, servertest.Options{})
	pub := newPublisher(t, hub)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	pub.publish("1001", "dialog", dialogInfo("1001", dialog("c1", "recipient", "confirmed", "sip:2001@hub.test", "Carol")))
	pub.publish("1001", "presence", pidf("1001", "open", "In the office", true))
	pub.publish("1002", "presence", pidf("1002", "closed", "", false))
	req, _ := http.NewRequestWithContext(ctx, "PUT", hub.URL+"/api/lists/team",
		strings.NewReader(`{"event": "dialog", "members": ["1001", "1002", "1003"], "names": {"1001": "Reception & Co", "1002": "Sales"}}`))
	req.Header.Set("Authorization", "Bearer "+hub.Token("admin", func(c *auth.Claims) { c.Admin = true }))
	res, err := http.DefaultClient.Do(req)
	if err != nil || res.StatusCode != 201 {
		t.Fatalf("PUT /api/lists/team: %v %v", res, err)
	}
	res.Body.Close()

	notifies := make(chan *sip.Request, 100)
	opts := sipclient.Options{Incoming: notifies}
	opts.Token = hub.Token("2000", func(c *auth.Claims) { c.Subscribe = []string{"1001", "1002"} })
	c := hub.Dial(ctx, "", opts)
	var got []notifyFixture
	take := func(step string) {
		t.Helper()
		select {
		case n := <-notifies:
			got = append(got, notifyFixture{
				Step:              step,
				SubscriptionState: headerValue(n, "Subscription-State"),
				ContentType:       headerValue(n, "Content-Type"),
				Body:              string(n.Body()),
			})
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: no NOTIFY within 5 s", step)
		}
	}
	subscribe := func(to, event string, body []byte, hdrs ...string) {
		t.Helper()
		r, err := c.NewRequest(sip.SUBSCRIBE, servertest.AOR("2000"), servertest.AOR(to))
		if err != nil {
			t.Fatal(err)
		}
		hdrs = append([]string{"Event", event, "Expires", "600", "Supported", "eventlist",
			"Accept", "multipart/related, application/rlmi+xml, application/dialog-info+xml, application/pidf+xml"}, hdrs...)
		for i := 0; i+1 < len(hdrs); i += 2 {
			r.AppendHeader(sip.NewHeader(hdrs[i], hdrs[i+1]))
		}
		if body != nil {
			r.SetBody(body)
		}
		res, err := c.Do(ctx, r)
		if err != nil || res.StatusCode != 200 {
			t.Fatalf("SUBSCRIBE %s: %v %v", to, res, err)
		}
	}

	subscribe("team", "dialog", nil)
	take("stored dialog list: first NOTIFY, full state (1001 busy, 1002 pending, 1003 rejected)")
	pub.publish("1002", "dialog", dialogInfo("1002", dialog("c2", "recipient", "early", "sip:2002@hub.test", "Dave")))
	take("1002 rings: partial state")
	pub.publish("1002", "dialog", dialogInfo("1002", dialog("c2", "recipient", "confirmed", "sip:2002@hub.test", "Dave")))
	take("1002 answered: partial state")
	pub.publish("1001", "dialog", dialogInfo("1001", dialog("c1", "recipient", "terminated", "sip:2001@hub.test", "Carol")))
	take("1001 hung up: partial state")

	subscribe("rls", "presence", []byte(`<?xml version="1.0" encoding="UTF-8"?>`+
		`<resource-lists xmlns="urn:ietf:params:xml:ns:resource-lists"><list>`+
		`<entry uri="sip:1001@hub.test"><display-name>Reception</display-name></entry>`+
		`<entry uri="sip:1002@hub.test"/></list></resource-lists>`),
		"Require", "recipient-list-subscribe", "Content-Disposition", "recipient-list",
		"Content-Type", "application/resource-lists+xml")
	take("RFC 5367 presence list: first NOTIFY, full state")

	for i := range got {
		got[i] = normalizeFixture(got[i])
	}
	path := filepath.Join("jstest", "testdata", "hub-notifies.json")
	want, err := json.MarshalIndent(got, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	want = append(want, '\n')
	if *updateFixtures {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, want, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	have, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./web -run RLMIFixtures -update-fixtures)", err)
	}
	if !bytes.Equal(have, want) {
		t.Errorf("%s is not what the hub sends now (run go test ./web -run RLMIFixtures -update-fixtures and check rlmi.test.js):\n%s", path, want)
	}
}

func headerValue(r *sip.Request, name string) string {
	var vals []string
	for _, h := range r.GetHeaders(name) {
		vals = append(vals, h.Value())
	}
	return strings.Join(vals, ", ")
}

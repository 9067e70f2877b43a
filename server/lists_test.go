package server_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/presencehub/presencehub/internal/sipclient"
	"github.com/presencehub/presencehub/server"
	"github.com/presencehub/presencehub/server/auth"
	"github.com/presencehub/presencehub/server/servertest"
	"github.com/presencehub/presencehub/wsproto"
)

// putList stores a list through the admin API.
func putList(t *testing.T, hub *servertest.Hub, name, body string) int {
	t.Helper()
	req, err := http.NewRequestWithContext(testCtx(t), "PUT", hub.URL+"/api/lists/"+name, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+adminToken(hub))
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	return res.StatusCode
}

// rlmiNotify is a list NOTIFY taken apart the way a plain parser would.
type rlmiNotify struct {
	req       *sip.Request
	version   int
	fullState bool
	uri       string
	resources map[string]rlmiResource // by resource URI
	parts     map[string][]byte       // Content-ID (without <>) → body
	order     []string                // resource URIs in document order
}

type rlmiResource struct {
	name, state, reason, cid, instance string
}

var (
	boundaryParam = regexp.MustCompile(`boundary="([^"]+)"`)
	startParam    = regexp.MustCompile(`start="<([^>]+)>"`)
	listAttrs     = regexp.MustCompile(`<list xmlns="urn:ietf:params:xml:ns:rlmi" uri="([^"]+)" version="(\d+)" fullState="(true|false)">`)
	resourceRe    = regexp.MustCompile(`<resource uri="([^"]+)">(?:<name>([^<]*)</name>)?<instance id="([^"]+)" state="([a-z]+)"(?: reason="([a-z]+)")?(?: cid="([^"]+)")?/></resource>`)
)

func parseRLMI(t *testing.T, req *sip.Request) rlmiNotify {
	t.Helper()
	if got := header(req, "Require"); got != "eventlist" {
		t.Fatalf("NOTIFY Require %q, want eventlist", got)
	}
	ct := header(req, "Content-Type")
	if !strings.HasPrefix(ct, `multipart/related;type="application/rlmi+xml";`) {
		t.Fatalf("NOTIFY Content-Type %q", ct)
	}
	bm, sm := boundaryParam.FindStringSubmatch(ct), startParam.FindStringSubmatch(ct)
	if bm == nil || sm == nil {
		t.Fatalf("no boundary or start in %q", ct)
	}
	body := req.Body()
	delim := []byte("--" + bm[1])
	if !bytes.HasSuffix(body, append(append([]byte{}, delim...), "--\r\n"...)) {
		t.Fatalf("body does not end with the close delimiter: %q", body[max(0, len(body)-80):])
	}
	chunks := bytes.Split(body[:len(body)-len(delim)-4], delim)
	n := rlmiNotify{req: req, resources: map[string]rlmiResource{}, parts: map[string][]byte{}}
	var rlmi []byte
	for i, c := range chunks {
		if i == 0 {
			if len(c) != 0 {
				t.Fatalf("preamble %q", c)
			}
			continue
		}
		head, part, ok := bytes.Cut(c, []byte("\r\n\r\n"))
		if !ok {
			t.Fatalf("part without header end: %q", c)
		}
		part = bytes.TrimSuffix(part, []byte("\r\n"))
		var cid string
		for _, line := range strings.Split(strings.TrimPrefix(string(head), "\r\n"), "\r\n") {
			if v, ok := strings.CutPrefix(line, "Content-ID: <"); ok {
				cid = strings.TrimSuffix(v, ">")
			}
		}
		if i == 1 {
			if cid != sm[1] {
				t.Fatalf("first part %q is not the start %q", cid, sm[1])
			}
			rlmi = part
			continue
		}
		n.parts[cid] = part
	}
	m := listAttrs.FindSubmatch(rlmi)
	if m == nil {
		t.Fatalf("no RLMI list element in %s", rlmi)
	}
	n.uri = string(m[1])
	n.version, _ = strconv.Atoi(string(m[2]))
	n.fullState = string(m[3]) == "true"
	for _, r := range resourceRe.FindAllSubmatch(rlmi, -1) {
		uri := string(r[1])
		n.order = append(n.order, uri)
		n.resources[uri] = rlmiResource{name: string(r[2]), instance: string(r[3]), state: string(r[4]), reason: string(r[5]), cid: string(r[6])}
	}
	if got, want := bytes.Count(rlmi, []byte("<resource ")), len(n.order); got != want {
		t.Fatalf("%d resources, %d understood: %s", got, want, rlmi)
	}
	for uri, r := range n.resources {
		if r.state == "active" {
			if _, ok := n.parts[r.cid]; !ok {
				t.Fatalf("%s: cid %q has no part", uri, r.cid)
			}
		} else if r.cid != "" {
			t.Fatalf("%s: %s instance with a cid", uri, r.state)
		}
	}
	if len(n.parts) != countActive(n) {
		t.Fatalf("%d parts for %d active instances", len(n.parts), countActive(n))
	}
	return n
}

func countActive(n rlmiNotify) int {
	c := 0
	for _, r := range n.resources {
		if r.state == "active" {
			c++
		}
	}
	return c
}

// part returns the body of resource ext's part.
func (n rlmiNotify) part(t *testing.T, ext string) []byte {
	t.Helper()
	r, ok := n.resources[servertest.AOR(ext)]
	if !ok || r.state != "active" {
		t.Fatalf("%s not active in NOTIFY (%+v)", ext, r)
	}
	return n.parts[r.cid]
}

func listSubscribe(t *testing.T, c *sipclient.Client, as, to, event string, hdrs ...string) *sip.Request {
	return subscribeReq(t, c, as, to, event, append([]string{"Accept", "multipart/related, application/rlmi+xml, application/dialog-info+xml, application/pidf+xml"}, hdrs...)...)
}

func TestList_StoredList_421WithoutSupportedEventlist(t *testing.T) {
	hub := servertest.Start(t, servertest.Options{})
	if code := putList(t, hub, "team", `{"event": "dialog", "members": ["1001", "1002"]}`); code != 201 {
		t.Fatalf("PUT: %d", code)
	}
	w, opts := newWatcher()
	c := hub.Dial(testCtx(t), "2000", opts)
	res := do(t, c, listSubscribe(t, c, "2000", "team", "dialog"))
	if res.StatusCode != 421 || header(res, "Require") != "eventlist" {
		t.Fatalf("got %d %s Require %q, want 421 with Require: eventlist", res.StatusCode, res.Reason, header(res, "Require"))
	}
	w.none(t, 300*time.Millisecond)
}

func TestList_FirstNotifyHasFullStateRejectedAndPendingMembers(t *testing.T) {
	hub := servertest.Start(t, servertest.Options{})
	newPublisher(t, hub, "1001").state("confirmed")
	if code := putList(t, hub, "team", `{"event": "dialog", "members": ["1001", "1002", "1003"], "names": {"1001": "Reception & Co"}}`); code != 201 {
		t.Fatalf("PUT: %d", code)
	}
	w, opts := newWatcher()
	// The token may watch 1001 and 1002, not 1003.
	opts.Token = hub.Token("2000", func(c *auth.Claims) { c.Subscribe = []string{"1001", "1002"} })
	c := hub.Dial(testCtx(t), "", opts)
	res := do(t, c, listSubscribe(t, c, "2000", "team", "dialog", "Supported", "eventlist"))
	if res.StatusCode != 200 {
		t.Fatalf("SUBSCRIBE: %d %s", res.StatusCode, res.Reason)
	}
	n := parseRLMI(t, w.next(t))
	if n.version != 0 || !n.fullState || n.uri != servertest.AOR("team") {
		t.Fatalf("RLMI uri %s version %d fullState %v, want %s 0 true", n.uri, n.version, n.fullState, servertest.AOR("team"))
	}
	if got := strings.Join(n.order, " "); got != servertest.AOR("1001")+" "+servertest.AOR("1002")+" "+servertest.AOR("1003") {
		t.Fatalf("resources in order %s", got)
	}
	if r := n.resources[servertest.AOR("1001")]; r.name != "Reception &amp; Co" || r.state != "active" {
		t.Fatalf("1001: %+v", r)
	}
	if got := lamp(n.part(t, "1001")); got != "confirmed" {
		t.Fatalf("1001 lamp %s", got)
	}
	if r := n.resources[servertest.AOR("1002")]; r.state != "pending" {
		t.Fatalf("1002 (nothing published) %+v, want pending", r)
	}
	if r := n.resources[servertest.AOR("1003")]; r.state != "terminated" || r.reason != "rejected" {
		t.Fatalf("1003 (not watchable) %+v, want terminated rejected", r)
	}
	// A rejected member's state never reaches the watcher.
	newPublisher(t, hub, "1003").state("early")
	w.none(t, 400*time.Millisecond)
}

func TestList_ChangesArePartialStateWithRisingVersionAndDedupe(t *testing.T) {
	hub := servertest.Start(t, servertest.Options{})
	p1, p2 := newPublisher(t, hub, "1001"), newPublisher(t, hub, "1002")
	p1.state("confirmed")
	p2.state("confirmed")
	putList(t, hub, "team", `{"event": "dialog", "members": ["1001", "1002"]}`)
	w, opts := newWatcher()
	c := hub.Dial(testCtx(t), "2000", opts)
	if res := do(t, c, listSubscribe(t, c, "2000", "team", "dialog", "Supported", "eventlist")); res.StatusCode != 200 {
		t.Fatalf("SUBSCRIBE: %d", res.StatusCode)
	}
	first := parseRLMI(t, w.next(t))
	v1001 := version(t, first.part(t, "1001"))

	p1.state("early") // lamp of 1001 changes: a partial NOTIFY with only 1001
	n := parseRLMI(t, w.next(t))
	if n.fullState || n.version != 1 || len(n.resources) != 1 || lamp(n.part(t, "1001")) != "early" {
		t.Fatalf("after a change: version %d fullState %v resources %v", n.version, n.fullState, n.order)
	}
	if got := version(t, n.part(t, "1001")); got != v1001+1 {
		t.Fatalf("1001's dialog-info version %d, want %d", got, v1001+1)
	}
	p1.state("early") // the same state again: deduplicated, no NOTIFY
	w.none(t, 400*time.Millisecond)
	p2.state("terminated")
	n = parseRLMI(t, w.next(t))
	if n.version != 2 || len(n.resources) != 1 || lamp(n.part(t, "1002")) != "idle" {
		t.Fatalf("after 1002 hangs up: version %d resources %v", n.version, n.order)
	}
}

func TestList_ChangesWithinTheBatchWindowLeaveInOneNotify(t *testing.T) {
	hub := servertest.Start(t, servertest.Options{Configure: func(c *server.Config) { c.ListBatch = 300 * time.Millisecond }})
	var pubs []*publisher
	var members []string
	for i := range 6 {
		ext := strconv.Itoa(1001 + i)
		pubs = append(pubs, newPublisher(t, hub, ext))
		members = append(members, `"`+ext+`"`)
		pubs[i].state("confirmed")
	}
	putList(t, hub, "team", `{"event": "dialog", "members": [`+strings.Join(members, ",")+`]}`)
	w, opts := newWatcher()
	c := hub.Dial(testCtx(t), "2000", opts)
	do(t, c, listSubscribe(t, c, "2000", "team", "dialog", "Supported", "eventlist"))
	parseRLMI(t, w.next(t))
	start := time.Now()
	pubs[0].state("early")
	pubs[1].state("early")
	pubs[0].state("terminated") // newest state of 1001 wins
	n := parseRLMI(t, w.next(t))
	if time.Since(start) > 5*300*time.Millisecond {
		t.Fatalf("batched NOTIFY took %v", time.Since(start))
	}
	if n.fullState || len(n.resources) != 2 || lamp(n.part(t, "1001")) != "idle" || lamp(n.part(t, "1002")) != "early" {
		t.Fatalf("batch: fullState %v resources %v", n.fullState, n.order)
	}
	w.none(t, 500*time.Millisecond)
	// More than half the list changed at once: one full-state resync.
	for _, p := range pubs[2:] {
		p.state("early")
	}
	n = parseRLMI(t, w.next(t))
	if !n.fullState || len(n.resources) != 6 {
		t.Fatalf("4 of 6 changed: fullState %v, %d resources", n.fullState, len(n.resources))
	}
}

func TestList_StoredListChangeReachesSubscriptionAtOnce(t *testing.T) {
	hub := servertest.Start(t, servertest.Options{Configure: func(c *server.Config) { c.ListBatch = 5 * time.Second }})
	newPublisher(t, hub, "1002").state("early")
	putList(t, hub, "team", `{"event": "dialog", "members": ["1001"]}`)
	w, opts := newWatcher()
	c := hub.Dial(testCtx(t), "2000", opts)
	do(t, c, listSubscribe(t, c, "2000", "team", "dialog", "Supported", "eventlist"))
	parseRLMI(t, w.next(t))
	start := time.Now()
	if code := putList(t, hub, "team", `{"event": "dialog", "members": ["1001", "1002"], "names": {"1002": "Sales"}}`); code != 200 {
		t.Fatalf("PUT again: %d", code)
	}
	n := parseRLMI(t, w.next(t))
	if time.Since(start) > 2*time.Second || !n.fullState || n.version != 1 || len(n.resources) != 2 || n.resources[servertest.AOR("1002")].name != "Sales" || lamp(n.part(t, "1002")) != "early" {
		t.Fatalf("after the list changed: %v fullState %v version %d %v", time.Since(start), n.fullState, n.version, n.resources)
	}
	// Deleted: the subscription ends with reason noresource.
	res := api(t, hub, "DELETE", "/api/lists/team", adminToken(hub))
	if res.code != 204 {
		t.Fatalf("DELETE: %d", res.code)
	}
	last := w.next(t)
	if got := header(last, "Subscription-State"); got != "terminated;reason=noresource" {
		t.Fatalf("after DELETE: %s", got)
	}
	if n := parseRLMI(t, last); !n.fullState || n.resources[servertest.AOR("1001")].state != "terminated" {
		t.Fatalf("final NOTIFY %+v", n.resources)
	}
}

func TestList_RefreshGetsFullState(t *testing.T) {
	hub := servertest.Start(t, servertest.Options{})
	newPublisher(t, hub, "1001").state("confirmed")
	putList(t, hub, "team", `{"event": "dialog", "members": ["1001", "1002"]}`)
	w, opts := newWatcher()
	c := hub.Dial(testCtx(t), "2000", opts)
	sub := listSubscribe(t, c, "2000", "team", "dialog", "Supported", "eventlist")
	res := do(t, c, sub)
	parseRLMI(t, w.next(t))
	refresh := sub.Clone()
	refresh.To().Params.Add("tag", mustTag(t, res))
	refresh.CSeq().SeqNo++
	refresh.Via().Params.Add("branch", sip.GenerateBranch())
	if res := do(t, c, refresh); res.StatusCode != 200 {
		t.Fatalf("refresh: %d", res.StatusCode)
	}
	n := parseRLMI(t, w.next(t))
	if !n.fullState || n.version != 1 || len(n.resources) != 2 {
		t.Fatalf("refresh: fullState %v version %d", n.fullState, n.version)
	}
}

func mustTag(t *testing.T, res *sip.Response) string {
	t.Helper()
	tag, ok := res.To().Params.Get("tag")
	if !ok {
		t.Fatal("200 without To tag")
	}
	return tag
}

func TestListAPI_ValidatesAndLists(t *testing.T) {
	hub := servertest.Start(t, servertest.Options{})
	for _, tc := range []struct {
		name, path, body string
		code             int
	}{
		{"created", "team", `{"event": "dialog", "members": ["1001", "sip:1002@hub.test"]}`, 201},
		{"replaced", "team", `{"event": "dialog", "members": ["1001"]}`, 200},
		{"unknown event", "x", `{"event": "foo", "members": []}`, 400},
		{"reserved rls", "rls", `{"event": "dialog", "members": []}`, 400},
		{"bad member", "x", `{"event": "dialog", "members": ["a b"]}`, 400},
		{"name of no member", "x", `{"event": "dialog", "members": ["1"], "names": {"2": "x"}}`, 400},
		{"unknown field", "x", `{"event": "dialog", "member": []}`, 400},
	} {
		if got := putList(t, hub, tc.path, tc.body); got != tc.code {
			t.Errorf("%s: PUT %d, want %d", tc.name, got, tc.code)
		}
	}
	res := api(t, hub, "GET", "/api/lists/team", adminToken(hub))
	if res.code != 200 || res.body["uri"] != servertest.AOR("team") || fmt.Sprint(res.body["members"]) != "[1001]" {
		t.Fatalf("GET: %d %v", res.code, res.body)
	}
	all := items(t, api(t, hub, "GET", "/api/lists", adminToken(hub)), 1, nil)
	if len(all) != 1 || all[0]["name"] != "team" {
		t.Fatalf("GET /api/lists: %v", all)
	}
	if res := api(t, hub, "DELETE", "/api/lists/nope", adminToken(hub)); res.code != 404 {
		t.Fatalf("DELETE unknown: %d", res.code)
	}
	// Lists survive a restart (SQLite).
	hub.Close()
	again := servertest.Start(t, servertest.Options{DBPath: hub.DBPath, Secret: hub.Secret})
	if res := api(t, again, "GET", "/api/lists/team", adminToken(again)); res.code != 200 {
		t.Fatalf("after restart: %d", res.code)
	}
	_ = json.Valid
	_ = wsproto.Options{}
}

func TestList_RefreshWithNarrowerTokenRejectsMembersItMayNoLongerWatch(t *testing.T) {
	hub := servertest.Start(t, servertest.Options{})
	newPublisher(t, hub, "1001").state("confirmed")
	newPublisher(t, hub, "1002").state("early")
	putList(t, hub, "team", `{"event": "dialog", "members": ["1001", "1002"]}`)
	w, opts := newWatcher()
	c := hub.Dial(testCtx(t), "2000", opts)
	sub := listSubscribe(t, c, "2000", "team", "dialog", "Supported", "eventlist")
	res := do(t, c, sub)
	if n := parseRLMI(t, w.next(t)); countActive(n) != 2 {
		t.Fatalf("first NOTIFY: %v", n.resources)
	}
	refresh := sipclient.InDialog(sub, res)
	narrower := hub.Token("2000", func(c *auth.Claims) { c.Subscribe = []string{"1001"} })
	refresh.AppendHeader(sip.NewHeader("Authorization", "Bearer "+narrower))
	if res := do(t, c, refresh); res.StatusCode != 200 {
		t.Fatalf("refresh: %d %s", res.StatusCode, res.Reason)
	}
	n := parseRLMI(t, w.next(t))
	if r := n.resources[servertest.AOR("1002")]; !n.fullState || r.state != "terminated" || r.reason != "rejected" || countActive(n) != 1 {
		t.Fatalf("after a narrower refresh: %v", n.resources)
	}
}

func resourceLists(entries ...string) []byte {
	var b strings.Builder
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?><resource-lists xmlns="urn:ietf:params:xml:ns:resource-lists"><list>`)
	for _, e := range entries {
		user, name, _ := strings.Cut(e, "=")
		b.WriteString(`<entry uri="` + servertest.AOR(user) + `">`)
		if name != "" {
			b.WriteString(`<display-name>` + name + `</display-name>`)
		}
		b.WriteString(`</entry>`)
	}
	b.WriteString(`</list></resource-lists>`)
	return []byte(b.String())
}

func rlsSubscribe(t *testing.T, c *sipclient.Client, as, event string, ct string, body []byte, hdrs ...string) *sip.Request {
	req := listSubscribe(t, c, as, "rls", event, append([]string{"Require", "recipient-list-subscribe", "Content-Disposition", "recipient-list"}, hdrs...)...)
	if body != nil {
		req = withBody(req, ct, body)
	}
	return req
}

func TestList_RequestContained_RFC5367(t *testing.T) {
	hub := servertest.Start(t, servertest.Options{Configure: func(c *server.Config) { c.MaxListMembers = 3 }})
	newPublisher(t, hub, "1001").state("confirmed")
	p2 := newPublisher(t, hub, "1002")
	w, opts := newWatcher()
	c := hub.Dial(testCtx(t), "2000", opts)
	for _, tc := range []struct {
		name   string
		req    *sip.Request
		code   int
		header string
	}{
		{"no Supported: eventlist", rlsSubscribe(t, c, "2000", "dialog", "application/resource-lists+xml", resourceLists("1001")), 421, "Require"},
		{"no body", rlsSubscribe(t, c, "2000", "dialog", "", nil, "Supported", "eventlist"), 400, ""},
		{"another media type", rlsSubscribe(t, c, "2000", "dialog", "text/plain", []byte("1001"), "Supported", "eventlist"), 415, "Accept"},
		{"malformed XML", rlsSubscribe(t, c, "2000", "dialog", "application/resource-lists+xml", []byte("<resource-lists><list>"), "Supported", "eventlist"), 400, ""},
		{"no entries", rlsSubscribe(t, c, "2000", "dialog", "application/resource-lists+xml", resourceLists(), "Supported", "eventlist"), 400, ""},
		{"too many entries", rlsSubscribe(t, c, "2000", "dialog", "application/resource-lists+xml", resourceLists("1", "2", "3", "4"), "Supported", "eventlist"), 413, ""},
	} {
		res := do(t, c, tc.req)
		if res.StatusCode != tc.code || (tc.header != "" && header(res, tc.header) == "") {
			t.Errorf("%s: %d %s, want %d with %s", tc.name, res.StatusCode, res.Reason, tc.code, tc.header)
		}
	}
	w.none(t, 200*time.Millisecond)

	res := do(t, c, rlsSubscribe(t, c, "2000", "dialog", "application/resource-lists+xml", resourceLists("1001=Reception", "1002"), "Supported", "eventlist"))
	if res.StatusCode != 200 {
		t.Fatalf("SUBSCRIBE: %d %s", res.StatusCode, res.Reason)
	}
	n := parseRLMI(t, w.next(t))
	if n.uri != servertest.AOR("rls") || !n.fullState || n.resources[servertest.AOR("1001")].name != "Reception" || lamp(n.part(t, "1001")) != "confirmed" || n.resources[servertest.AOR("1002")].state != "pending" {
		t.Fatalf("first NOTIFY: uri %s %v", n.uri, n.resources)
	}
	p2.state("early") // pending → active
	n = parseRLMI(t, w.next(t))
	if n.fullState || n.version != 1 || len(n.resources) != 1 || lamp(n.part(t, "1002")) != "early" {
		t.Fatalf("after 1002 rings: %v", n.resources)
	}
}

// A subscriber that answers a NOTIFY late gets one full-state resync, not
// the changes one by one.
func TestList_SlowSubscriberGetsOneFullStateResync(t *testing.T) {
	hub := servertest.Start(t, servertest.Options{Configure: func(c *server.Config) { c.ListBatch = 20 * time.Millisecond }})
	var pubs []*publisher
	for _, ext := range []string{"1001", "1002", "1003", "1004"} {
		p := newPublisher(t, hub, ext)
		p.state("confirmed")
		pubs = append(pubs, p)
	}
	putList(t, hub, "team", `{"event": "dialog", "members": ["1001", "1002", "1003", "1004"]}`)
	held := make(chan *sip.Request, 10)
	var hold atomic.Bool
	c := hub.Dial(testCtx(t), "2000", sipclient.Options{OnRequest: func(r *sip.Request) int {
		// Whether to hold is read before the test sees the NOTIFY: it
		// sets hold right after receiving the one to answer at once.
		later := hold.Load()
		held <- r
		if later {
			return 0 // answered later
		}
		return 200
	}})
	do(t, c, listSubscribe(t, c, "2000", "team", "dialog", "Supported", "eventlist"))
	next := func() *sip.Request {
		select {
		case r := <-held:
			return r
		case <-time.After(5 * time.Second):
			t.Fatal("no NOTIFY")
			return nil
		}
	}
	parseRLMI(t, next())
	hold.Store(true)
	pubs[0].state("early")
	slow := next() // not answered for 1.2 s
	pubs[1].state("early")
	time.Sleep(1200 * time.Millisecond)
	hold.Store(false)
	if err := c.SendRaw([]byte(sip.NewResponseFromRequest(slow, 200, "OK", nil).String())); err != nil {
		t.Fatal(err)
	}
	n := parseRLMI(t, next())
	if !n.fullState || len(n.resources) != 4 || lamp(n.part(t, "1002")) != "early" {
		t.Fatalf("after a slow answer: fullState %v, %d resources", n.fullState, len(n.resources))
	}
	pubs[2].state("early") // answered at once again: partial
	if n := parseRLMI(t, next()); n.fullState || len(n.resources) != 1 {
		t.Fatalf("after a quick answer: fullState %v %v", n.fullState, n.order)
	}
}

func TestList_FetchAndShutdown(t *testing.T) {
	hub := servertest.Start(t, servertest.Options{})
	newPublisher(t, hub, "1001").state("confirmed")
	putList(t, hub, "team", `{"event": "dialog", "members": ["1001", "1002"]}`)
	w, opts := newWatcher()
	c := hub.Dial(testCtx(t), "2000", opts)
	// A fetch (Expires: 0): one NOTIFY with the state, terminated.
	fetch := listSubscribe(t, c, "2000", "team", "dialog", "Supported", "eventlist")
	fetch.ReplaceHeader(sip.NewHeader("Expires", "0"))
	if res := do(t, c, fetch); res.StatusCode != 200 {
		t.Fatalf("fetch: %d", res.StatusCode)
	}
	f := w.next(t)
	if n := parseRLMI(t, f); header(f, "Subscription-State") != "terminated;reason=timeout" || lamp(n.part(t, "1001")) != "confirmed" || n.resources[servertest.AOR("1002")].state != "pending" {
		t.Fatalf("fetch: %s %v", header(f, "Subscription-State"), n.resources)
	}
	// Shutdown: the final NOTIFY ends every instance (deactivated: subscribe again elsewhere).
	do(t, c, listSubscribe(t, c, "2000", "team", "dialog", "Supported", "eventlist"))
	parseRLMI(t, w.next(t))
	shut := make(chan error, 1)
	go func() { shut <- hub.Shutdown(testCtx(t)) }()
	last := w.next(t)
	if err := <-shut; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	n := parseRLMI(t, last)
	if header(last, "Subscription-State") != "terminated;reason=deactivated" || !n.fullState || len(n.parts) != 0 ||
		n.resources[servertest.AOR("1001")].state != "terminated" || n.resources[servertest.AOR("1001")].reason != "deactivated" {
		t.Fatalf("shutdown: %s %v", header(last, "Subscription-State"), n.resources)
	}
}

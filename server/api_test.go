package server_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/presencehub/presencehub/internal/sipclient"
	"github.com/presencehub/presencehub/server/auth"
	"github.com/presencehub/presencehub/server/servertest"
)

// apiResponse is one admin API answer.
type apiResponse struct {
	code   int
	header http.Header
	body   map[string]any
}

// api calls the admin API with token ("" = none) and checks that every
// answer with a body is JSON.
func api(t *testing.T, hub *servertest.Hub, method, path, token string) apiResponse {
	t.Helper()
	req, err := http.NewRequestWithContext(testCtx(t), method, hub.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	out := apiResponse{code: res.StatusCode, header: res.Header}
	if res.StatusCode == http.StatusNoContent {
		return out
	}
	if ct := res.Header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("%s %s: %d with Content-Type %q, want application/json", method, path, res.StatusCode, ct)
	}
	if err := json.NewDecoder(res.Body).Decode(&out.body); err != nil {
		t.Fatalf("%s %s: %d, body is not a JSON object: %v", method, path, res.StatusCode, err)
	}
	if res.StatusCode >= 400 {
		if msg, _ := out.body["error"].(string); msg == "" || len(out.body) != 1 {
			t.Errorf("%s %s: %d error body %v, want {\"error\": \"...\"}", method, path, res.StatusCode, out.body)
		}
	}
	return out
}

func adminToken(hub *servertest.Hub) string {
	return hub.Token("ops", func(c *auth.Claims) { c.Admin = true })
}

// items returns a page's items, checking total (unless < 0) and next.
func items(t *testing.T, r apiResponse, total int, next any) []map[string]any {
	t.Helper()
	if r.code != 200 {
		t.Fatalf("list: %d %v", r.code, r.body)
	}
	if got := r.body["total"]; total >= 0 && got != float64(total) {
		t.Errorf("total = %v, want %d", got, total)
	}
	if got := r.body["next"]; got != next {
		t.Errorf("next = %v, want %v", got, next)
	}
	raw, _ := r.body["items"].([]any)
	out := make([]map[string]any, 0, len(raw))
	for _, it := range raw {
		out = append(out, it.(map[string]any))
	}
	return out
}

func TestAPI_Authz_AdminClaimRequired(t *testing.T) {
	hub := servertest.Start(t, servertest.Options{})
	other, err := auth.Signer{Secret: []byte("not the hub's secret, 32 bytes.."), Domain: servertest.Domain}.
		Mint("ops", time.Hour, func(c *auth.Claims) { c.Admin = true })
	if err != nil {
		t.Fatal(err)
	}
	tokens := []struct {
		name, token string
		code        int
	}{
		{"no token", "", 401},
		{"garbage token", "not-a-jwt", 401},
		{"admin claim signed by another key", other, 401},
		{"valid user token without admin", hub.Token("1001", nil), 403},
		{"PBX token publishing everything", hub.Token("pbx", func(c *auth.Claims) { c.Publish = []string{"*"} }), 403},
		{"admin", adminToken(hub), 200},
	}
	paths := []string{"/api/resources", "/api/subscriptions", "/api/registrations", "/api/resources/sip:1001@hub.test"}
	for _, tt := range tokens {
		t.Run(tt.name, func(t *testing.T) {
			for _, p := range paths {
				r := api(t, hub, "GET", p, tt.token)
				if r.code != tt.code {
					t.Errorf("GET %s: %d, want %d", p, r.code, tt.code)
				}
				if tt.code == 401 && !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Bearer") {
					t.Errorf("GET %s: 401 without WWW-Authenticate: Bearer", p)
				}
			}
			// Writes are refused the same way, before anything is looked up.
			if r := api(t, hub, "DELETE", "/api/subscriptions/x", tt.token); tt.code != 200 && r.code != tt.code {
				t.Errorf("DELETE: %d, want %d", r.code, tt.code)
			}
		})
	}
}

func TestAPI_ResourcesPublicationsSubscriptionsRegistrations(t *testing.T) {
	hub := servertest.Start(t, servertest.Options{})
	admin := adminToken(hub)
	ctx := testCtx(t)

	// A PBX publishes three extensions; 1002 reports presence.
	pbx := hub.Dial(ctx, "pbx", sipclient.Options{Token: hub.Token("pbx", func(c *auth.Claims) { c.Publish = []string{"*"} })})
	p1001 := &publisher{t: t, c: pbx, ext: "1001", dialog: "call1"}
	p1001.state("early")
	(&publisher{t: t, c: pbx, ext: "1003", dialog: "call7"}).state("confirmed")
	pres := withBody(newReq(t, pbx, sip.PUBLISH, "1002", "1002", "Event", "presence", "Expires", "600"),
		"application/pidf+xml", pidf(servertest.AOR("1002"), "open", "at desk"))
	if res := do(t, pbx, pres); res.StatusCode != 200 {
		t.Fatalf("PUBLISH presence: %d", res.StatusCode)
	}

	t.Run("list resources with composed state, paged", func(t *testing.T) {
		want := []struct{ aor, dialog, presence string }{
			{"sip:1001@hub.test", "early", "closed"},
			{"sip:1002@hub.test", "idle", "open"},
			{"sip:1003@hub.test", "confirmed", "closed"},
		}
		var got []map[string]any
		got = append(got, items(t, api(t, hub, "GET", "/api/resources?limit=2", admin), 3, float64(2))...)
		got = append(got, items(t, api(t, hub, "GET", "/api/resources?offset=2&limit=2", admin), 3, nil)...)
		if len(got) != len(want) {
			t.Fatalf("got %d resources over two pages, want %d: %v", len(got), len(want), got)
		}
		for i, w := range want {
			state, _ := got[i]["state"].(map[string]any)
			if got[i]["resource"] != w.aor || state["dialog"] != w.dialog || state["presence"] != w.presence {
				t.Errorf("item %d = %v, want %s dialog=%s presence=%s", i, got[i], w.aor, w.dialog, w.presence)
			}
		}
		if rest := items(t, api(t, hub, "GET", "/api/resources?offset=9", admin), 3, nil); len(rest) != 0 {
			t.Errorf("past the end: %v", rest)
		}
		// Keyset paging: ?after= the previous page's next_after.
		first := api(t, hub, "GET", "/api/resources?limit=2", admin)
		if first.body["next_after"] != "sip:1002@hub.test" {
			t.Fatalf("next_after = %v, want sip:1002@hub.test", first.body["next_after"])
		}
		second := items(t, api(t, hub, "GET", "/api/resources?limit=2&after="+url.QueryEscape("sip:1002@hub.test"), admin), 3, nil)
		if len(second) != 1 || second[0]["resource"] != "sip:1003@hub.test" {
			t.Errorf("page after sip:1002@hub.test = %v, want only sip:1003@hub.test", second)
		}
		for _, q := range []string{"limit=0", "limit=1001", "limit=ten", "offset=-1", "offset=x"} {
			if r := api(t, hub, "GET", "/api/resources?"+q, admin); r.code != 400 {
				t.Errorf("?%s: %d, want 400", q, r.code)
			}
		}
	})

	t.Run("inspect one resource", func(t *testing.T) {
		r := api(t, hub, "GET", "/api/resources/"+url.PathEscape("sip:1001@hub.test"), admin)
		if r.code != 200 || r.body["resource"] != "sip:1001@hub.test" {
			t.Fatalf("inspect: %d %v", r.code, r.body)
		}
		views := r.body["views"].(map[string]any)
		dlg := views["dialog"].(map[string]any)
		dialogs, _ := dlg["dialogs"].([]any)
		if dlg["summary"] != "early" || len(dialogs) != 1 || dialogs[0].(map[string]any)["state"] != "early" ||
			!strings.Contains(dlg["body"].(string), "<dialog-info") || dlg["content_type"] != "application/dialog-info+xml" {
			t.Errorf("dialog view = %v", dlg)
		}
		if p := views["presence"].(map[string]any); p["summary"] != "closed" || p["rev"] != float64(0) {
			t.Errorf("presence view (nothing published) = %v", p)
		}
		pubs := r.body["publications"].([]any)
		if len(pubs) != 1 {
			t.Fatalf("publications = %v", pubs)
		}
		pub := pubs[0].(map[string]any)
		if pub["etag"] != p1001.etag || pub["publisher"] != "pbx" || pub["event"] != "dialog" ||
			!strings.Contains(pub["body"].(string), "<state>early</state>") {
			t.Errorf("publication = %v (etag %s)", pub, p1001.etag)
		}
		if r := api(t, hub, "GET", "/api/resources/1001", admin); r.code != 400 {
			t.Errorf("inspect a non-AOR: %d, want 400", r.code)
		}
	})

	// A watcher of 1001 sees what the admin does.
	w, opts := newWatcher()
	wc := hub.Dial(ctx, "2001", opts)
	sub := subscribeReq(t, wc, "2001", "1001", "dialog")
	if res := do(t, wc, sub); res.StatusCode != 200 {
		t.Fatalf("SUBSCRIBE: %d", res.StatusCode)
	}
	if n := w.next(t); lamp(n.Body()) != "early" {
		t.Fatalf("initial lamp %q", lamp(n.Body()))
	}

	t.Run("remove a publication notifies watchers", func(t *testing.T) {
		path := "/api/resources/" + url.PathEscape("sip:1001@hub.test") + "/publications/" + url.PathEscape(p1001.etag)
		if r := api(t, hub, "DELETE", path, admin); r.code != 204 {
			t.Fatalf("DELETE publication: %d %v", r.code, r.body)
		}
		n := w.next(t)
		if lamp(n.Body()) != "idle" || !strings.HasPrefix(header(n, "Subscription-State"), "active") {
			t.Errorf("NOTIFY after removal: lamp %q, %s", lamp(n.Body()), header(n, "Subscription-State"))
		}
		if r := api(t, hub, "DELETE", path, admin); r.code != 404 {
			t.Errorf("second DELETE: %d, want 404", r.code)
		}
		list := items(t, api(t, hub, "GET", "/api/resources", admin), 2, nil)
		if len(list) != 2 || list[0]["resource"] != "sip:1002@hub.test" {
			t.Errorf("resources after removal: %v", list)
		}
	})

	t.Run("list and end a subscription", func(t *testing.T) {
		if other := items(t, api(t, hub, "GET", "/api/subscriptions?watcher=9999", admin), 0, nil); len(other) != 0 {
			t.Errorf("subscriptions of 9999: %v", other)
		}
		list := items(t, api(t, hub, "GET", "/api/subscriptions?watcher=2001", admin), 1, nil)
		if list[0]["resource"] != "sip:1001@hub.test" || list[0]["event"] != "dialog" || list[0]["watcher"] != "2001" ||
			list[0]["attached"] != true || !strings.HasPrefix(list[0]["id"].(string), sub.CallID().Value()) {
			t.Fatalf("subscription = %v", list[0])
		}
		path := "/api/subscriptions/" + url.PathEscape(list[0]["id"].(string))
		if r := api(t, hub, "DELETE", path, admin); r.code != 204 {
			t.Fatalf("DELETE subscription: %d %v", r.code, r.body)
		}
		n := w.next(t)
		if got := header(n, "Subscription-State"); got != "terminated;reason=deactivated" {
			t.Errorf("final NOTIFY Subscription-State = %q", got)
		}
		waitFor(t, "the subscription to go", func() bool {
			return len(items(t, api(t, hub, "GET", "/api/subscriptions", admin), -1, nil)) == 0
		})
		if r := api(t, hub, "DELETE", path, admin); r.code != 404 {
			t.Errorf("second DELETE: %d, want 404", r.code)
		}
		w.none(t, 100*time.Millisecond)
	})

	t.Run("registrations by AOR, paged", func(t *testing.T) {
		for _, ext := range []string{"1001", "1002"} {
			c := hub.Dial(ctx, ext, sipclient.Options{})
			if res := do(t, c, newReq(t, c, sip.REGISTER, ext, ext, "Expires", "600")); res.StatusCode != 200 {
				t.Fatalf("REGISTER %s: %d", ext, res.StatusCode)
			}
		}
		byAOR := items(t, api(t, hub, "GET", "/api/registrations?aor="+url.QueryEscape("sip:1001@hub.test"), admin), 1, nil)
		if byAOR[0]["aor"] != "sip:1001@hub.test" || !strings.Contains(byAOR[0]["contact"].(string), ".invalid") || byAOR[0]["expires"] == "" {
			t.Errorf("binding = %v", byAOR[0])
		}
		if byUser := items(t, api(t, hub, "GET", "/api/registrations?user=1002", admin), 1, nil); byUser[0]["aor"] != "sip:1002@hub.test" {
			t.Errorf("binding of user 1002 = %v", byUser[0])
		}
		first := items(t, api(t, hub, "GET", "/api/registrations?limit=1", admin), 2, float64(1))
		second := items(t, api(t, hub, "GET", "/api/registrations?limit=1&offset=1", admin), 2, nil)
		if first[0]["aor"] != "sip:1001@hub.test" || second[0]["aor"] != "sip:1002@hub.test" {
			t.Errorf("pages: %v then %v", first, second)
		}
	})

	t.Run("unknown endpoints and methods get JSON errors", func(t *testing.T) {
		for _, tt := range []struct {
			method, path string
			code         int
		}{
			{"GET", "/api/nothing", 404},
			{"POST", "/api/resources", 405},
			{"PUT", "/api/subscriptions/abc", 405},
			{"DELETE", "/api/subscriptions/does-not-exist", 404},
			{"DELETE", "/api/resources/sip:1001@hub.test/publications/nope", 404},
		} {
			r := api(t, hub, tt.method, tt.path, admin)
			if r.code != tt.code {
				t.Errorf("%s %s: %d, want %d", tt.method, tt.path, r.code, tt.code)
			}
			if tt.code == 405 && r.header.Get("Allow") == "" {
				t.Errorf("%s %s: 405 without Allow", tt.method, tt.path)
			}
		}
	})
}

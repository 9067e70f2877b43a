package server_test

import (
	"strings"
	"testing"

	"github.com/emiago/sipgo/sip"
	"github.com/presencehub/presencehub/internal/sipclient"
	"github.com/presencehub/presencehub/server/auth"
	"github.com/presencehub/presencehub/server/servertest"
)

// Every row of RFC 3903 §6 answered on the wire, with a real SQLite file.
func TestPublish_RFC3903Section6(t *testing.T) {
	hub := servertest.Start(t, servertest.Options{})
	aor := servertest.AOR("1001")
	c := hub.Dial(testCtx(t), "1001", sipclient.Options{})

	publish := func(t *testing.T, event, etag, expires, ct string, body []byte, extra ...string) *sip.Response {
		t.Helper()
		var hdrs []string
		if event != "" {
			hdrs = append(hdrs, "Event", event)
		}
		if etag != "" {
			hdrs = append(hdrs, "SIP-If-Match", etag)
		}
		if expires != "" {
			hdrs = append(hdrs, "Expires", expires)
		}
		hdrs = append(hdrs, extra...)
		req := newReq(t, c, sip.PUBLISH, "1001", "1001", hdrs...)
		if body != nil {
			withBody(req, ct, body)
		}
		return do(t, c, req)
	}
	initial := func(t *testing.T) string {
		t.Helper()
		res := publish(t, "dialog", "", "3600", "application/dialog-info+xml", dialogInfo(aor, "d1", "confirmed"))
		if res.StatusCode != 200 || header(res, "SIP-ETag") == "" {
			t.Fatalf("initial PUBLISH: %d, SIP-ETag %q", res.StatusCode, header(res, "SIP-ETag"))
		}
		return header(res, "SIP-ETag")
	}
	di := "application/dialog-info+xml"

	tests := []struct {
		name    string
		run     func(t *testing.T) *sip.Response
		code    int
		headers map[string]string // header → substring expected
	}{
		{"initial with body → 200, SIP-ETag, Expires", func(t *testing.T) *sip.Response {
			return publish(t, "dialog", "", "120", di, dialogInfo(aor, "d1", "early"))
		}, 200, map[string]string{"Expires": "120"}},
		{"initial without body → 400", func(t *testing.T) *sip.Response {
			return publish(t, "dialog", "", "120", "", nil)
		}, 400, nil},
		{"refresh (If-Match, no body) → 200 new ETag", func(t *testing.T) *sip.Response {
			etag := initial(t)
			res := publish(t, "dialog", etag, "300", "", nil)
			if header(res, "SIP-ETag") == etag {
				t.Errorf("refresh kept the entity-tag %q (RFC 3903 §6 step 6)", etag)
			}
			return res
		}, 200, map[string]string{"Expires": "300"}},
		{"modify (If-Match + body) → 200 new ETag", func(t *testing.T) *sip.Response {
			etag := initial(t)
			res := publish(t, "dialog", etag, "300", di, dialogInfo(aor, "d1", "terminated"))
			if header(res, "SIP-ETag") == etag {
				t.Errorf("modify kept the entity-tag")
			}
			return res
		}, 200, nil},
		{"remove (If-Match, Expires 0) → 200 Expires 0", func(t *testing.T) *sip.Response {
			return publish(t, "dialog", initial(t), "0", "", nil)
		}, 200, map[string]string{"Expires": "0"}},
		{"old ETag after modify → 412", func(t *testing.T) *sip.Response {
			etag := initial(t)
			publish(t, "dialog", etag, "300", "", nil)
			return publish(t, "dialog", etag, "300", "", nil)
		}, 412, nil},
		{"unknown ETag → 412", func(t *testing.T) *sip.Response {
			return publish(t, "dialog", "nosuchtag", "300", "", nil)
		}, 412, nil},
		{"two SIP-If-Match → 400", func(t *testing.T) *sip.Response {
			etag := initial(t)
			return publish(t, "dialog", etag+", "+etag, "300", "", nil)
		}, 400, nil},
		{"unknown event → 489 + Allow-Events", func(t *testing.T) *sip.Response {
			return publish(t, "conference", "", "300", "application/conference-info+xml", []byte("<conference-info/>"))
		}, 489, map[string]string{"Allow-Events": "dialog"}},
		{"no Event → 489", func(t *testing.T) *sip.Response {
			return publish(t, "", "", "300", di, dialogInfo(aor, "d1", "early"))
		}, 489, nil},
		{"wrong content type → 415 + Accept", func(t *testing.T) *sip.Response {
			return publish(t, "dialog", "", "300", "application/pidf+xml", pidf(aor, "open", ""))
		}, 415, map[string]string{"Accept": "application/dialog-info+xml"}},
		{"malformed XML → 400", func(t *testing.T) *sip.Response {
			return publish(t, "dialog", "", "300", di, []byte("<dialog-info><dialog"))
		}, 400, nil},
		{"entity of another AOR → 400", func(t *testing.T) *sip.Response {
			return publish(t, "dialog", "", "300", di, dialogInfo(servertest.AOR("1002"), "d1", "early"))
		}, 400, nil},
		{"too brief → 423 + Min-Expires", func(t *testing.T) *sip.Response {
			return publish(t, "dialog", "", "5", di, dialogInfo(aor, "d1", "early"))
		}, 423, map[string]string{"Min-Expires": "60"}},
		{"above maximum → lowered", func(t *testing.T) *sip.Response {
			return publish(t, "dialog", "", "999999", di, dialogInfo(aor, "d1", "early"))
		}, 200, map[string]string{"Expires": "86400"}},
		{"no Expires → the package default", func(t *testing.T) *sip.Response {
			return publish(t, "dialog", "", "", di, dialogInfo(aor, "d1", "early"))
		}, 200, map[string]string{"Expires": "3600"}},
		{"refresh without Expires → the package default", func(t *testing.T) *sip.Response {
			return publish(t, "dialog", initial(t), "", "", nil)
		}, 200, map[string]string{"Expires": "3600"}},
		{"refresh too brief → 423 + Min-Expires", func(t *testing.T) *sip.Response {
			return publish(t, "dialog", initial(t), "10", "", nil)
		}, 423, map[string]string{"Min-Expires": "60"}},
		// A huge Expires is lowered to the maximum, never wrapped
		// (9223372037 s overflowed a duration; 18446744174 wrapped to 100).
		{"Expires beyond 64 bits → lowered to the maximum", func(t *testing.T) *sip.Response {
			return publish(t, "dialog", "", "18446744174", di, dialogInfo(aor, "d1", "early"))
		}, 200, map[string]string{"Expires": "86400"}},
		{"Expires beyond a duration → lowered to the maximum", func(t *testing.T) *sip.Response {
			return publish(t, "dialog", "", "9223372037", di, dialogInfo(aor, "d1", "early"))
		}, 200, map[string]string{"Expires": "86400"}},
		{"Expires not a number → 400", func(t *testing.T) *sip.Response {
			return publish(t, "dialog", "", "-5", di, dialogInfo(aor, "d1", "early"))
		}, 400, nil},
		{"presence PIDF → 200", func(t *testing.T) *sip.Response {
			return publish(t, "presence", "", "300", "application/pidf+xml", pidf(aor, "open", "at desk"))
		}, 200, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := tt.run(t)
			if res.StatusCode != tt.code {
				t.Fatalf("got %d %s, want %d", res.StatusCode, res.Reason, tt.code)
			}
			if res.Reason == "" {
				t.Error("no reason phrase")
			}
			for h, want := range tt.headers {
				if got := header(res, h); !strings.Contains(got, want) {
					t.Errorf("%s = %q, want %q", h, got, want)
				}
			}
		})
	}
}

func TestPublish_ForeignAOR_Returns403(t *testing.T) {
	hub := servertest.Start(t, servertest.Options{})
	c := hub.Dial(testCtx(t), "1001", sipclient.Options{})
	req := withBody(newReq(t, c, sip.PUBLISH, "1001", "1002", "Event", "dialog"), "application/dialog-info+xml",
		dialogInfo(servertest.AOR("1002"), "d", "early"))
	if res := do(t, c, req); res.StatusCode != 403 {
		t.Fatalf("got %d, want 403", res.StatusCode)
	}
	// A PBX token with publish ["*"] may.
	pbx := hub.Dial(testCtx(t), "", sipclient.Options{Token: hub.Token("pbx", func(cl *auth.Claims) { cl.Publish = []string{"*"} })})
	req = withBody(newReq(t, pbx, sip.PUBLISH, "pbx", "1002", "Event", "dialog"), "application/dialog-info+xml",
		dialogInfo(servertest.AOR("1002"), "d", "early"))
	if res := do(t, pbx, req); res.StatusCode != 200 {
		t.Fatalf("PBX token: got %d, want 200", res.StatusCode)
	}
}

// SIP.js publishes each PUBLISH with a new Call-ID and CSeq 1: only
// SIP-If-Match links them (docs/protocol.md, "What JsSIP and SIP.js need").
func TestPublish_SIPjsStyle_NewCallIDEachTime(t *testing.T) {
	hub := servertest.Start(t, servertest.Options{})
	c := hub.Dial(testCtx(t), "1001", sipclient.Options{})
	req := wireRequest(t, "sipjs-node/09-c2s-PUBLISH_dialog.sip", hub.Token("1001", nil))
	res := do(t, c, req)
	if res.StatusCode != 200 {
		t.Fatalf("captured SIP.js PUBLISH: %d %s", res.StatusCode, res.Reason)
	}
	etag := header(res, "SIP-ETag")
	refresh := wireRequest(t, "sipjs-node/09-c2s-PUBLISH_dialog.sip", hub.Token("1001", nil))
	refresh.SetBody(nil)
	refresh.RemoveHeader("Content-Type")
	refresh.ReplaceHeader(sip.NewHeader("Call-ID", "another-call-id"))
	refresh.AppendHeader(sip.NewHeader("SIP-If-Match", etag))
	if res := do(t, c, refresh); res.StatusCode != 200 || header(res, "SIP-ETag") == etag {
		t.Fatalf("refresh: %d etag %q", res.StatusCode, header(res, "SIP-ETag"))
	}
}

package compositor_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/presencehub/presencehub/compositor"
	"github.com/presencehub/presencehub/compositor/store"
)

// TestPublish_RFC3903Section6 walks every row of RFC 3903 §6 through the
// Compositor API on a real SQLite file.
func TestPublish_RFC3903Section6(t *testing.T) {
	type step func(h *harness) (compositor.PublishRequest, string) // request, and the prior ETag if any
	initial := func(h *harness) string {
		return h.mustPublish(presenceReq(300, "t1=open")).ETag
	}
	tests := []struct {
		name        string
		req         step
		wantCode    int // 0 = 200
		wantExpires int
		check       func(t *testing.T, h *harness, prior string, res compositor.PublishResult, e *compositor.Error)
	}{
		{
			name:        "Initial_WithBody_Returns200AndNewETag",
			req:         func(h *harness) (compositor.PublishRequest, string) { return presenceReq(300, "t1=open"), "" },
			wantExpires: 300,
			check: func(t *testing.T, h *harness, _ string, res compositor.PublishResult, _ *compositor.Error) {
				if len(res.ETag) < 20 {
					t.Errorf("ETag %q too short to be unguessable", res.ETag)
				}
				if got := h.c.View(alice, "presence").Presence.Tuples; len(got) != 1 || got[0].Basic != "open" {
					t.Errorf("view tuples = %+v, want t1 open", got)
				}
				if _, err := h.c.Find(context.Background(), alice, res.ETag); err != nil {
					t.Errorf("Find(new ETag): %v", err)
				}
			},
		},
		{
			name:        "Initial_DialogEvent_Returns200",
			req:         func(h *harness) (compositor.PublishRequest, string) { return dialogReq(300, "a1=confirmed"), "" },
			wantExpires: 300,
		},
		{
			name: "Initial_NoBody_Returns400",
			req: func(h *harness) (compositor.PublishRequest, string) {
				return compositor.PublishRequest{Resource: alice, Event: "presence", Expires: 300}, ""
			},
			wantCode: 400,
		},
		{
			name: "UnknownEvent_Returns489WithAllowEvents",
			req: func(h *harness) (compositor.PublishRequest, string) {
				r := presenceReq(300, "t1=open")
				r.Event = "conference"
				return r, ""
			},
			wantCode: 489,
			check: func(t *testing.T, _ *harness, _ string, _ compositor.PublishResult, e *compositor.Error) {
				if e.AllowEvents != "presence, dialog, message-summary" {
					t.Errorf("AllowEvents = %q", e.AllowEvents)
				}
			},
		},
		{
			name: "MissingEvent_Returns489",
			req: func(h *harness) (compositor.PublishRequest, string) {
				r := presenceReq(300, "t1=open")
				r.Event = ""
				return r, ""
			},
			wantCode: 489,
		},
		{
			name: "TwoIfMatchETags_Returns400",
			req: func(h *harness) (compositor.PublishRequest, string) {
				tag := initial(h)
				r := refreshReq("presence", tag, 300)
				r.IfMatch = append(r.IfMatch, tag)
				return r, tag
			},
			wantCode: 400,
		},
		{
			name: "UnknownETag_Returns412",
			req: func(h *harness) (compositor.PublishRequest, string) {
				initial(h)
				return refreshReq("presence", "nosuchetag", 300), ""
			},
			wantCode: 412,
		},
		{
			name: "ETagOfAnotherResource_Returns412",
			req: func(h *harness) (compositor.PublishRequest, string) {
				tag := initial(h)
				r := refreshReq("presence", tag, 300)
				r.Resource = "sip:2002@hub.test"
				return r, tag
			},
			wantCode: 412,
		},
		{
			name: "ETagOfAnotherEvent_Returns412",
			req: func(h *harness) (compositor.PublishRequest, string) {
				tag := initial(h)
				return refreshReq("dialog", tag, 300), tag
			},
			wantCode: 412,
		},
		{
			name: "ExpiredETag_Returns412",
			req: func(h *harness) (compositor.PublishRequest, string) {
				tag := h.mustPublish(presenceReq(60, "t1=open")).ETag
				h.clk.Advance(61 * time.Second)
				return refreshReq("presence", tag, 300), tag
			},
			wantCode: 412,
		},
		{
			name: "PreviousETagAfterRefresh_Returns412",
			req: func(h *harness) (compositor.PublishRequest, string) {
				tag := initial(h)
				h.mustPublish(refreshReq("presence", tag, 300))
				return refreshReq("presence", tag, 300), tag
			},
			wantCode: 412,
		},
		// The expiry policy (default, 423 below the minimum, lowered to the
		// maximum) is the SIP layer's (package siprule, and the front end's
		// TestPublish_RFC3903Section6); the compositor keeps what it granted.
		{
			name:        "GrantedLifetime_Kept",
			req:         func(h *harness) (compositor.PublishRequest, string) { return presenceReq(10*86400, "t1=open"), "" },
			wantExpires: 10 * 86400,
		},
		{
			name:     "NegativeLifetime_Returns400",
			req:      func(h *harness) (compositor.PublishRequest, string) { return presenceReq(-1, "t1=open"), "" },
			wantCode: 400,
		},
		{
			name: "WrongContentType_Returns415WithAccept",
			req: func(h *harness) (compositor.PublishRequest, string) {
				r := presenceReq(300, "t1=open")
				r.ContentType = "application/xpidf+xml"
				return r, ""
			},
			wantCode: 415,
			check: func(t *testing.T, _ *harness, _ string, _ compositor.PublishResult, e *compositor.Error) {
				if e.Accept != "application/pidf+xml" {
					t.Errorf("Accept = %q", e.Accept)
				}
			},
		},
		{
			name: "DialogBodyForPresence_Returns415",
			req: func(h *harness) (compositor.PublishRequest, string) {
				r := dialogReq(300, "a=early")
				r.Event = "presence"
				return r, ""
			},
			wantCode: 415,
		},
		{
			name: "MalformedXML_Returns400",
			req: func(h *harness) (compositor.PublishRequest, string) {
				r := presenceReq(300)
				r.Body = []byte(`<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:1001@hub.test"><tuple id="t1">`)
				return r, ""
			},
			wantCode: 400,
		},
		{
			name: "InvalidPIDF_TupleWithoutStatus_Returns400",
			req: func(h *harness) (compositor.PublishRequest, string) {
				r := presenceReq(300)
				r.Body = []byte(`<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:1001@hub.test"><tuple id="t1"/></presence>`)
				return r, ""
			},
			wantCode: 400,
		},
		{
			name: "EntityNotTheResource_Returns400",
			req: func(h *harness) (compositor.PublishRequest, string) {
				r := presenceReq(300, "t1=open")
				r.Body = pidfBody("sip:2002@hub.test", "t1=open")
				return r, ""
			},
			wantCode: 400,
		},
		{
			name: "EntityPresURI_SameAOR_Returns200",
			req: func(h *harness) (compositor.PublishRequest, string) {
				r := presenceReq(300, "t1=open")
				r.Body = pidfBody("pres:1001@HUB.test", "t1=open")
				return r, ""
			},
			wantExpires: 300,
		},
		{
			name: "BodyTooLarge_Returns413",
			req: func(h *harness) (compositor.PublishRequest, string) {
				r := presenceReq(300, "t1=open")
				r.Body = append(r.Body, bytes.Repeat([]byte(" "), 65<<10)...)
				return r, ""
			},
			wantCode: 413,
		},
		{
			name: "NestingTooDeep_Returns400",
			req: func(h *harness) (compositor.PublishRequest, string) {
				r := presenceReq(300)
				r.Body = []byte(`<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:1001@hub.test">` +
					strings.Repeat("<x:a xmlns:x=\"urn:x\">", 40) + strings.Repeat("</x:a>", 40) + `</presence>`)
				return r, ""
			},
			wantCode: 400,
		},
		{
			name: "Refresh_NoBody_Returns200NewETagKeepsState",
			req: func(h *harness) (compositor.PublishRequest, string) {
				tag := initial(h)
				return refreshReq("presence", tag, 600), tag
			},
			wantExpires: 600,
			check: func(t *testing.T, h *harness, prior string, res compositor.PublishResult, _ *compositor.Error) {
				if res.ETag == prior {
					t.Errorf("refresh kept ETag %q; RFC 3903 §6 step 6 wants a new one", prior)
				}
				p, err := h.c.Find(context.Background(), alice, res.ETag)
				if err != nil || !strings.Contains(string(p.Body), "open") {
					t.Errorf("Find after refresh = %q, %v", p.Body, err)
				}
				if _, err := h.c.Find(context.Background(), alice, prior); !errors.Is(err, compositor.ErrNotFound) {
					t.Errorf("old ETag still found: %v", err)
				}
			},
		},
		{
			name: "Refresh_GrantedLifetime_Kept", // the default for a refresh without Expires: server's test
			req: func(h *harness) (compositor.PublishRequest, string) {
				tag := initial(h)
				return refreshReq("presence", tag, 3600), tag
			},
			wantExpires: 3600,
		},
		{
			name: "Modify_WithBody_Returns200NewETagReplacesState",
			req: func(h *harness) (compositor.PublishRequest, string) {
				tag := initial(h)
				r := presenceReq(300, "t1=closed")
				r.IfMatch = []string{tag}
				return r, tag
			},
			wantExpires: 300,
			check: func(t *testing.T, h *harness, prior string, res compositor.PublishResult, _ *compositor.Error) {
				if res.ETag == prior {
					t.Errorf("modify kept ETag")
				}
				if got := h.c.View(alice, "presence").Presence.Tuples; len(got) != 1 || got[0].Basic != "closed" {
					t.Errorf("view tuples = %+v, want t1 closed", got)
				}
				if ps, _ := h.c.List(context.Background(), alice); len(ps) != 1 {
					t.Errorf("List = %d publications, want 1 (modified in place)", len(ps))
				}
			},
		},
		{
			name: "Remove_Expires0_Returns200Expires0",
			req: func(h *harness) (compositor.PublishRequest, string) {
				tag := initial(h)
				return refreshReq("presence", tag, 0), tag
			},
			wantExpires: 0,
			check: func(t *testing.T, h *harness, prior string, res compositor.PublishResult, _ *compositor.Error) {
				if _, err := h.c.Find(context.Background(), alice, prior); !errors.Is(err, compositor.ErrNotFound) {
					t.Errorf("removed publication still found: %v", err)
				}
				v := h.c.View(alice, "presence")
				if len(v.Presence.Tuples) != 1 || v.Presence.Tuples[0].Basic != "closed" {
					t.Errorf("view after remove = %+v, want basic closed", v.Presence.Tuples)
				}
			},
		},
		{
			name: "Remove_UnknownETag_Returns412",
			req: func(h *harness) (compositor.PublishRequest, string) {
				return refreshReq("presence", "nosuchetag", 0), ""
			},
			wantCode: 412,
		},
		{
			name: "Initial_Expires0_Returns200StoresNothing",
			req:  func(h *harness) (compositor.PublishRequest, string) { return presenceReq(0, "t1=open"), "" },
			check: func(t *testing.T, h *harness, _ string, res compositor.PublishResult, _ *compositor.Error) {
				if ps, _ := h.c.List(context.Background(), alice); len(ps) != 0 {
					t.Errorf("List = %d, want 0", len(ps))
				}
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			req, prior := tc.req(h)
			res, err := h.publish(req)
			var se *compositor.Error
			if tc.wantCode == 0 {
				if err != nil {
					t.Fatalf("Publish: %v, want 200", err)
				}
				if res.Expires != tc.wantExpires {
					t.Errorf("Expires = %d, want %d", res.Expires, tc.wantExpires)
				}
				if res.ETag == "" {
					t.Errorf("no ETag on success")
				}
			} else {
				se = sipError(t, err)
				if se.Code != tc.wantCode {
					t.Fatalf("code = %d (%s), want %d", se.Code, se.Reason, tc.wantCode)
				}
				if strings.ContainsAny(se.Reason, "\r\n") || se.Reason == "" {
					t.Errorf("reason %q not a valid reason phrase", se.Reason)
				}
			}
			if tc.check != nil {
				tc.check(t, h, prior, res, se)
			}
		})
	}
}

func TestPublish_StoreFailure_Returns500Or503AndChangesNothing(t *testing.T) {
	for _, tc := range []struct {
		name  string
		err   error
		code  int
		retry bool
	}{
		{"Busy_Returns503RetryAfter", fmt.Errorf("disk: %w", store.ErrBusy), 503, true},
		{"Other_Returns500", errors.New("boom"), 500, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			h.c.Close()
			fs := &faultyStore{Store: h.store}
			h.openWith(fs)
			tag := h.mustPublish(presenceReq(300, "t1=open")).ETag
			fs.fail(tc.err)
			for _, r := range []compositor.PublishRequest{
				presenceReq(300, "t2=open"),
				refreshReq("presence", tag, 300),
				func() compositor.PublishRequest {
					r := presenceReq(300, "t1=closed")
					r.IfMatch = []string{tag}
					return r
				}(),
				refreshReq("presence", tag, 0),
			} {
				_, err := h.publish(r)
				se := sipError(t, err)
				if se.Code != tc.code || (se.RetryAfter > 0) != tc.retry {
					t.Fatalf("error = %+v, want %d retry=%v", se, tc.code, tc.retry)
				}
			}
			fs.fail(nil)
			if _, err := h.c.Find(context.Background(), alice, tag); err != nil {
				t.Fatalf("original ETag lost after failed writes: %v", err)
			}
			if got := h.c.View(alice, "presence").Presence.Tuples; len(got) != 1 || got[0].Basic != "open" {
				t.Fatalf("view changed by failed writes: %+v", got)
			}
			if _, err := h.publish(refreshReq("presence", tag, 300)); err != nil {
				t.Fatalf("refresh after failures: %v", err)
			}
		})
	}
}

func TestPublish_ConcurrentRefreshSameETag_OneWinsOthers412(t *testing.T) {
	h := newHarness(t)
	tag := h.mustPublish(presenceReq(300, "t1=open")).ETag
	const n = 8
	var wg sync.WaitGroup
	codes := make([]int, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := h.c.Publish(context.Background(), refreshReq("presence", tag, 300))
			var se *compositor.Error
			switch {
			case err == nil:
				codes[i] = 200
			case errors.As(err, &se):
				codes[i] = se.Code
			default:
				codes[i] = -1
			}
		}()
	}
	wg.Wait()
	wins := 0
	for _, c := range codes {
		switch c {
		case 200:
			wins++
		case 412:
		default:
			t.Fatalf("codes = %v, want 200 or 412 only", codes)
		}
	}
	if wins != 1 {
		t.Fatalf("codes = %v, want exactly one 200", codes)
	}
}

func TestPublish_Restart_ETagStillValid(t *testing.T) {
	h := newHarness(t)
	tag := h.mustPublish(presenceReq(300, "t1=open")).ETag
	h.close()
	h.clk.Advance(100 * time.Second)
	h.open()
	v := h.c.View(alice, "presence")
	if len(v.Presence.Tuples) != 1 || v.Presence.Tuples[0].Basic != "open" {
		t.Fatalf("view after restart = %+v", v.Presence.Tuples)
	}
	res, err := h.publish(refreshReq("presence", tag, 300))
	if err != nil {
		t.Fatalf("refresh after restart: %v", err)
	}
	h.close()
	h.clk.Advance(301 * time.Second) // expires while down
	h.open()
	if v := h.c.View(alice, "presence"); v.Presence.Tuples[0].ID != "none" {
		t.Fatalf("expired-while-down publication still composed: %+v", v.Presence.Tuples)
	}
	if _, err := h.publish(refreshReq("presence", res.ETag, 300)); sipError(t, err).Code != 412 {
		t.Fatalf("refresh of expired publication: %v, want 412", err)
	}
}

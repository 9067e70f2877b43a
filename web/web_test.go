package web_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/presencehub/presencehub/web"
)

func get(t *testing.T, h http.Handler, method, target string, hdr map[string]string) *http.Response {
	t.Helper()
	req := httptest.NewRequest(method, target, nil)
	req.Host = "hub.test:8080"
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Result()
}

func body(t *testing.T, res *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("read body: %v", err)
	}
	return string(b)
}

func TestHandler_Files_ServedWithContentTypeAndNoCache(t *testing.T) {
	h := web.Handler()
	tests := []struct {
		path, contentType, contains string
	}{
		{"/", "text/html; charset=utf-8", `<script type="module" src="app.js">`},
		{"/index.html", "text/html; charset=utf-8", "<title>"},
		{"/app.js", "text/javascript; charset=utf-8", "import"},
		{"/sipws.js", "text/javascript; charset=utf-8", "export class Subscriber"},
		{"/sipmsg.js", "text/javascript; charset=utf-8", "export function parse"},
		{"/blf.js", "text/javascript; charset=utf-8", "export function lampOf"},
		{"/lamps.js", "text/javascript; charset=utf-8", "export class LampGrid"},
		{"/settings.js", "text/javascript; charset=utf-8", "export function takeToken"},
		{"/console.css", "text/css; charset=utf-8", ".lamp"},
		{"/favicon.svg", "image/svg+xml", "<svg"},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			res := get(t, h, http.MethodGet, tt.path, nil)
			if res.StatusCode != http.StatusOK {
				t.Fatalf("status %d", res.StatusCode)
			}
			if got := res.Header.Get("Content-Type"); got != tt.contentType {
				t.Errorf("Content-Type %q, want %q", got, tt.contentType)
			}
			if got := res.Header.Get("Cache-Control"); got != "no-cache" {
				t.Errorf("Cache-Control %q, want no-cache", got)
			}
			if res.Header.Get("ETag") == "" {
				t.Error("no ETag")
			}
			if got := res.Header.Get("X-Content-Type-Options"); got != "nosniff" {
				t.Errorf("X-Content-Type-Options %q", got)
			}
			if got := res.Header.Get("Referrer-Policy"); got != "no-referrer" {
				t.Errorf("Referrer-Policy %q (the page URL may carry a token)", got)
			}
			if b := body(t, res); !strings.Contains(b, tt.contains) {
				t.Errorf("body lacks %q", tt.contains)
			}
		})
	}
}

func TestHandler_CSP_AllowsOnlySelfAndWebSocketToSelf(t *testing.T) {
	res := get(t, web.Handler(), http.MethodGet, "/", nil)
	csp := res.Header.Get("Content-Security-Policy")
	for _, want := range []string{
		"default-src 'none'",
		"script-src 'self'",
		"style-src 'self'",
		"connect-src 'self' ws://hub.test:8080 wss://hub.test:8080;",
		"frame-ancestors 'none'",
		"base-uri 'none'",
	} {
		if !strings.Contains(csp, want) {
			t.Errorf("CSP %q lacks %q", csp, want)
		}
	}
	if strings.Contains(csp, "unsafe") || strings.Contains(csp, "*") {
		t.Errorf("CSP %q allows unsafe sources", csp)
	}
}

func TestHandler_CSP_OddHostNotEchoed(t *testing.T) {
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	req.Host = "evil.test; script-src *"
	rec := httptest.NewRecorder()
	web.Handler().ServeHTTP(rec, req)
	csp := rec.Result().Header.Get("Content-Security-Policy")
	if strings.Contains(csp, "evil") || !strings.Contains(csp, "connect-src 'self';") {
		t.Errorf("CSP %q", csp)
	}
}

func TestHandler_IfNoneMatch_Returns304(t *testing.T) {
	h := web.Handler()
	etag := get(t, h, http.MethodGet, "/app.js", nil).Header.Get("ETag")
	res := get(t, h, http.MethodGet, "/app.js", map[string]string{"If-None-Match": etag})
	if res.StatusCode != http.StatusNotModified {
		t.Fatalf("status %d, want 304", res.StatusCode)
	}
}

func TestHandler_Refusals(t *testing.T) {
	h := web.Handler()
	tests := []struct {
		name, method, path string
		status             int
	}{
		{"unknown file", http.MethodGet, "/nope.js", http.StatusNotFound},
		{"directory traversal", http.MethodGet, "/../web.go", http.StatusNotFound},
		{"source outside static", http.MethodGet, "/web.go", http.StatusNotFound},
		{"subdirectory", http.MethodGet, "/static/app.js", http.StatusNotFound},
		{"POST", http.MethodPost, "/", http.StatusMethodNotAllowed},
		{"DELETE", http.MethodDelete, "/app.js", http.StatusMethodNotAllowed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := get(t, h, tt.method, tt.path, nil)
			if res.StatusCode != tt.status {
				t.Errorf("status %d, want %d", res.StatusCode, tt.status)
			}
			if res.Header.Get("Content-Security-Policy") == "" {
				t.Error("refusal without CSP")
			}
		})
	}
}

func TestHandler_Head_NoBody(t *testing.T) {
	res := get(t, web.Handler(), http.MethodHead, "/", nil)
	if res.StatusCode != http.StatusOK || body(t, res) != "" {
		t.Fatalf("status %d", res.StatusCode)
	}
}

// staticFiles lists the console's files from the source tree (the handler serves the same set).
func staticFiles(t *testing.T) map[string]string {
	t.Helper()
	entries, err := os.ReadDir("static")
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]string{}
	for _, e := range entries {
		b, err := os.ReadFile(path.Join("static", e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		files[e.Name()] = string(b)
	}
	return files
}

func TestConsole_EveryImportIsServed(t *testing.T) {
	h := web.Handler()
	importRE := regexp.MustCompile(`(?m)(?:^import|^\} from|^\s*import\s*\{[^}]*\}\s*from)[^'"]*['"]([^'"]+)['"]`)
	for name, src := range staticFiles(t) {
		if !strings.HasSuffix(name, ".js") {
			continue
		}
		for _, m := range importRE.FindAllStringSubmatch(src, -1) {
			spec := m[1]
			if !strings.HasPrefix(spec, "./") {
				t.Errorf("%s imports %q: only the console's own modules may be imported", name, spec)
				continue
			}
			if res := get(t, h, http.MethodGet, "/"+strings.TrimPrefix(spec, "./"), nil); res.StatusCode != http.StatusOK {
				t.Errorf("%s imports %q: status %d", name, spec, res.StatusCode)
			}
		}
	}
}

func TestConsole_NoInlineCodeNoThirdPartyURLs(t *testing.T) {
	inline := regexp.MustCompile(`<script(?:\s[^>]*)?>\s*[^<\s]|<style|\sstyle=|\son[a-z]+=|javascript:`)
	url := regexp.MustCompile(`(?:https?|wss?)://[^\s"'<>)]+`)
	for name, src := range staticFiles(t) {
		if strings.HasSuffix(name, ".html") {
			if m := inline.FindString(src); m != "" {
				t.Errorf("%s has inline code %q (forbidden by the CSP)", name, m)
			}
		}
		for _, u := range url.FindAllString(src, -1) {
			if u == "http://www.w3.org/2000/svg" { // an XML namespace name, never fetched
				continue
			}
			t.Errorf("%s mentions %q: the console talks to nothing but the hub", name, u)
		}
	}
}

// TestConsole_JavaScriptUnitTests runs the console's module tests (web/jstest) with Node's
// built-in test runner: SIP message syntax, the subscriber's state machine on a fake socket and
// clock, lamp rules, settings.
func TestConsole_JavaScriptUnitTests(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		if os.Getenv("PRESENCEHUB_REQUIRE_NODE") != "" {
			t.Fatal("node is not installed (PRESENCEHUB_REQUIRE_NODE is set)")
		}
		t.Skip("node not installed: JavaScript unit tests not run")
	}
	files, err := filepath.Glob("jstest/*.test.js")
	if err != nil || len(files) == 0 {
		t.Fatalf("no JavaScript tests found: %v", err)
	}
	cmd := exec.CommandContext(t.Context(), node, append([]string{"--test"}, files...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("node --test %v: %v\n%s", files, err, out)
	}
	if !regexp.MustCompile(`(?m)^# pass [1-9]`).Match(out) {
		t.Fatalf("node ran no test:\n%s", out)
	}
}

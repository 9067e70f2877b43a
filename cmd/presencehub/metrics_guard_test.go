package main

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

func get(t *testing.T, url, bearer string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

func TestMetrics_BearerTokenProtectsTheScrape(t *testing.T) {
	h := startHub(t, "PRESENCEHUB_METRICS_TOKEN=scrape-me")
	base := "http://" + h.addr
	tests := []struct {
		name, path, bearer string
		code               int
	}{
		{"no token", "/metrics", "", http.StatusUnauthorized},
		{"wrong token", "/metrics", "guess", http.StatusUnauthorized},
		{"a path that cleans to /metrics", "//metrics", "", http.StatusUnauthorized},
		{"the token", "/metrics", "scrape-me", http.StatusOK},
		{"other paths need none", "/healthz", "", http.StatusOK},
	}
	http.DefaultClient.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	defer func() { http.DefaultClient.CheckRedirect = nil }()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body := get(t, base+tt.path, tt.bearer)
			if code != tt.code {
				t.Fatalf("%s: %d, want %d", tt.path, code, tt.code)
			}
			if tt.path == "/metrics" && (code == http.StatusOK) != strings.Contains(body, "presencehub_connections") {
				t.Fatalf("body %.200q", body)
			}
		})
	}
}

func TestMetrics_SeparateListenAddress(t *testing.T) {
	h := startHub(t, "PRESENCEHUB_METRICS_ADDR=127.0.0.1:0")
	line := h.waitLog("metrics serving")
	maddr, _ := line["addr"].(string)
	if code, _ := get(t, "http://"+h.addr+"/metrics", ""); code != http.StatusNotFound {
		t.Errorf("/metrics on the main address: %d, want 404", code)
	}
	if code, body := get(t, "http://"+maddr+"/metrics", ""); code != http.StatusOK || !strings.Contains(body, "presencehub_connections") {
		t.Errorf("/metrics on the metrics address: %d", code)
	}
	for _, p := range []string{"/", "/api/resources", "/healthz"} {
		if code, _ := get(t, "http://"+maddr+p, ""); code != http.StatusNotFound {
			t.Errorf("%s on the metrics address: %d, want 404", p, code)
		}
	}
}

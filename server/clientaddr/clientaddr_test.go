package clientaddr_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"

	"github.com/presencehub/presencehub/server/clientaddr"
)

func prefixes(s ...string) []netip.Prefix {
	var out []netip.Prefix
	for _, p := range s {
		out = append(out, netip.MustParsePrefix(p))
	}
	return out
}

// seenAs is the RemoteAddr a handler behind p sees for a request from peer
// with the given X-Forwarded-For header lines.
func seenAs(t *testing.T, p *clientaddr.Proxies, peer string, xff ...string) string {
	t.Helper()
	var got string
	h := p.Handler(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) { got = r.RemoteAddr }))
	r := httptest.NewRequest(http.MethodGet, "/ws", nil)
	r.RemoteAddr = peer
	for _, v := range xff {
		r.Header.Add("X-Forwarded-For", v)
	}
	h.ServeHTTP(httptest.NewRecorder(), r)
	return got
}

func TestHandler_RightmostUntrustedAddressFromTrustedPeersOnly(t *testing.T) {
	p, err := clientaddr.New(prefixes("10.0.0.0/8", "fd00::/8"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, peer string
		xff        []string
		want       string
	}{
		{"trusted proxy, one client", "10.0.0.2:4000", []string{"198.51.100.7"}, "198.51.100.7:4000"},
		{"the client's own claim is left of its address", "10.0.0.2:4000", []string{"203.0.113.1, 198.51.100.7"}, "198.51.100.7:4000"},
		{"a chain of trusted proxies is skipped", "10.0.0.2:4000", []string{"198.51.100.7, 10.1.1.1, 10.2.2.2"}, "198.51.100.7:4000"},
		{"several header lines are one list", "10.0.0.2:4000", []string{"203.0.113.1", "198.51.100.7"}, "198.51.100.7:4000"},
		{"IPv6 client", "10.0.0.2:4000", []string{"2001:db8::5"}, "[2001:db8::5]:4000"},
		{"IPv6 proxy", "[fd00::1]:4000", []string{"198.51.100.7"}, "198.51.100.7:4000"},
		{"untrusted peer: header ignored", "192.0.2.50:4000", []string{"198.51.100.7"}, "192.0.2.50:4000"},
		{"no header: the proxy itself", "10.0.0.2:4000", nil, "10.0.0.2:4000"},
		{"only trusted addresses: the proxy itself", "10.0.0.2:4000", []string{"10.3.3.3"}, "10.0.0.2:4000"},
		{"garbage right of the client: nothing believed", "10.0.0.2:4000", []string{"198.51.100.7, not-an-ip"}, "10.0.0.2:4000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := seenAs(t, p, tt.peer, tt.xff...); got != tt.want {
				t.Fatalf("seen as %s, want %s", got, tt.want)
			}
		})
	}
}

func TestNoTrustedProxies_ChangeNothing(t *testing.T) {
	for _, p := range []*clientaddr.Proxies{nil, mustNew(t)} {
		if got := seenAs(t, p, "127.0.0.1:80", "198.51.100.7"); got != "127.0.0.1:80" {
			t.Fatalf("seen as %s", got)
		}
	}
}

func mustNew(t *testing.T, nets ...netip.Prefix) *clientaddr.Proxies {
	p, err := clientaddr.New(nets)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// Behind nginx at 10.0.0.2, a client's request carries its address in
// X-Forwarded-For.
func ExampleProxies_Handler() {
	p, _ := clientaddr.New([]netip.Prefix{netip.MustParsePrefix("10.0.0.2/32")})
	h := p.Handler(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) { fmt.Println(r.RemoteAddr) }))
	r := httptest.NewRequest(http.MethodGet, "/ws", nil)
	r.RemoteAddr = "10.0.0.2:51000"
	r.Header.Set("X-Forwarded-For", "198.51.100.7")
	h.ServeHTTP(httptest.NewRecorder(), r)
	// Output: 198.51.100.7:51000
}

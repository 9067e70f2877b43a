package siprule_test

import (
	"testing"

	"github.com/presencehub/presencehub/internal/siprule"
)

func TestSyntax_HostSentByToken(t *testing.T) {
	tests := []struct {
		name string
		fn   func(string) bool
		in   string
		want bool
	}{
		{"host name", siprule.ValidHost, "hub.example.com", true},
		{"IPv6 literal", siprule.ValidHost, "[2001:db8::1]", true},
		{"empty host", siprule.ValidHost, "", false},
		{"wildcard host", siprule.ValidHost, "*", false},
		{"host with a space", siprule.ValidHost, "a b", false},
		{"sent-by with port", siprule.ValidSentBy, "10.0.0.1:5060", true},
		{"sent-by IPv6 with port", siprule.ValidSentBy, "[::1]:5060", true},
		{"sent-by empty port", siprule.ValidSentBy, "h:", false},
		{"sent-by six-digit port", siprule.ValidSentBy, "h:123456", false},
		{"sent-by bare IPv6", siprule.ValidSentBy, "::1", false},
		{"token", siprule.IsToken, "WSS", true},
		{"token with space", siprule.IsToken, "W S", false},
		{"empty token", siprule.IsToken, "", false},
	}
	for _, tt := range tests {
		if got := tt.fn(tt.in); got != tt.want {
			t.Errorf("%s: %q → %v, want %v", tt.name, tt.in, got, tt.want)
		}
	}
}

func TestAOR_Canonical(t *testing.T) {
	if got := siprule.AOR("1001", "hub.test"); got != "sip:1001@hub.test" {
		t.Fatalf("AOR = %q", got)
	}
}

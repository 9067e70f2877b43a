package siprule_test

import (
	"testing"

	"github.com/emiago/sipgo/sip"
	"github.com/presencehub/presencehub/internal/siprule"
)

func TestHeader_FoundByNameIgnoringCaseWithoutAllocating(t *testing.T) {
	raw := "PUBLISH sip:1001@example.com SIP/2.0\r\n" +
		"Via: SIP/2.0/WSS h.invalid;branch=z9hG4bK1\r\n" +
		"From: <sip:1001@example.com>;tag=a\r\nTo: <sip:1001@example.com>\r\n" +
		"Call-ID: c1\r\nCSeq: 1 PUBLISH\r\nMax-Forwards: 70\r\n" +
		"event: dialog\r\nSIP-If-Match: e1\r\nsip-if-match: e2\r\nEXPIRES: 60\r\n" +
		"Content-Length: 0\r\n\r\n"
	msg, err := sip.NewParser().ParseSIP([]byte(raw))
	if err != nil {
		t.Fatal(err)
	}
	req := msg.(*sip.Request)
	for _, tc := range []struct {
		name      string
		wantValue string // of the first; "" when absent
		wantCount int
	}{
		{"Event", "dialog", 1},
		{"EVENT", "dialog", 1},
		{"SIP-If-Match", "e1", 2},
		{"Expires", "60", 1},
		{"Authorization", "", 0},
		{"Event-", "", 0},
	} {
		h := siprule.Header(req, tc.name)
		if got := ""; h != nil {
			got = h.Value()
			if got != tc.wantValue {
				t.Errorf("Header(%q) = %q, want %q", tc.name, got, tc.wantValue)
			}
		} else if tc.wantValue != "" {
			t.Errorf("Header(%q) = nil, want %q", tc.name, tc.wantValue)
		}
		if n := siprule.HeaderCount(req, tc.name); n != tc.wantCount {
			t.Errorf("HeaderCount(%q) = %d, want %d", tc.name, n, tc.wantCount)
		}
		if a := testing.AllocsPerRun(10, func() { siprule.Header(req, tc.name); siprule.HeaderCount(req, tc.name) }); a != 0 {
			t.Errorf("looking up %q allocates %.0f times", tc.name, a)
		}
	}
}

package natsstore

import "testing"

func TestKeys_EncodeAORsAsSubjectTokens_RoundTrip(t *testing.T) {
	tests := []struct{ resource, event, id, want string }{
		{"sip:1001@example.com", "presence", "0a1b", "sip=3A1001=40example=2Ecom.presence.0a1b"},
		{"sip:alice.smith@pbx.local", "dialog", "ff", "sip=3Aalice=2Esmith=40pbx=2Elocal.dialog.ff"},
		{"sip:*67@x", "presence", "id-1", "sip=3A=2A67=40x.presence.id-1"},
		{"sip:a b>c@x", "presence", "1", "sip=3Aa=20b=3Ec=40x.presence.1"},
		{"", "", "", "=.=.="},
		{"sip:ü@x", "presence", "1", "sip=3A=C3=BC=40x.presence.1"},
	}
	for _, tc := range tests {
		got := pubKey(tc.resource, tc.event, tc.id)
		if got != tc.want {
			t.Errorf("pubKey(%q, %q, %q) = %q, want %q", tc.resource, tc.event, tc.id, got, tc.want)
		}
		r, e, id, ok := splitKey(got)
		if !ok || r != tc.resource || e != tc.event || id != tc.id {
			t.Errorf("splitKey(%q) = %q %q %q %v", got, r, e, id, ok)
		}
	}
	for _, bad := range []string{"a.b", "a.b.c.d", "sip=3.x.y", "sip=zz.x.y", "a=4.b.c"} {
		if _, _, _, ok := splitKey(bad); ok {
			t.Errorf("splitKey(%q) accepted", bad)
		}
	}
}

package siprule_test

import (
	"testing"

	"github.com/presencehub/presencehub/internal/siprule"
)

func TestValidCallIDAndText(t *testing.T) {
	for _, tt := range []struct {
		v              string
		callID, isText bool
	}{
		{"a84b4c76e66710@pc33.atlanta.com", true, true},
		{"4l084ktuu1v600epih27", true, true},
		{"a@b@c", false, true},
		{"", false, true},
		{"with space", false, true},
		{"c\x00d", false, false},
		{"c\xff", false, false},
		{`"José" <sip:1001@hub.test>;tag=a`, false, true},
		{"tab\tok", false, true},
		{"del\x7f", false, false},
	} {
		if got := siprule.ValidCallID(tt.v); got != tt.callID {
			t.Errorf("ValidCallID(%q) = %v", tt.v, got)
		}
		if got := siprule.ValidText(tt.v); got != tt.isText {
			t.Errorf("ValidText(%q) = %v", tt.v, got)
		}
	}
}

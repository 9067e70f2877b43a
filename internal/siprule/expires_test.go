package siprule_test

import (
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/presencehub/presencehub/internal/siprule"
)

func TestParseExpires_DeltaSecondsClampedNeverWrapped(t *testing.T) {
	tests := []struct {
		in      string
		want    int
		wantErr bool
	}{
		{"0", 0, false},
		{"3600", 3600, false},
		{" \t600 ", 600, false},
		{"4294967295", siprule.MaxDeltaSeconds, false},
		{"4294967296", siprule.MaxDeltaSeconds, false},
		{"9223372037", siprule.MaxDeltaSeconds, false},  // overflowed a time.Duration
		{"18446744174", siprule.MaxDeltaSeconds, false}, // wrapped a uint64
		{"99999999999999999999999999999999999999", siprule.MaxDeltaSeconds, false},
		{"", 0, true},
		{"  ", 0, true},
		{"-1", 0, true},
		{"+5", 0, true},
		{"5s", 0, true},
		{"0x10", 0, true},
		{"1 2", 0, true},
	}
	for _, tt := range tests {
		got, err := siprule.ParseExpires(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("ParseExpires(%q) = %d, %v; want %d, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestExpires_HeaderAbsentIsMinusOne(t *testing.T) {
	req := sip.NewRequest(sip.PUBLISH, sip.Uri{Scheme: "sip", User: "1001", Host: "hub.test"})
	if n, err := siprule.Expires(req); n != -1 || err != nil {
		t.Fatalf("no header: %d, %v", n, err)
	}
	req.AppendHeader(sip.NewHeader("Expires", " 120 "))
	if n, err := siprule.Expires(req); n != 120 || err != nil {
		t.Fatalf("Expires: 120 → %d, %v", n, err)
	}
}

func TestExpiryPolicy_Grant(t *testing.T) {
	p := siprule.ExpiryPolicy{Default: time.Hour, Min: time.Minute, Max: 2 * time.Hour}
	tests := []struct {
		name      string
		requested int
		want      time.Duration
		ok        bool
	}{
		{"absent gets the default", -1, time.Hour, true},
		{"zero stays zero (remove, un-SUBSCRIBE, fetch)", 0, 0, true},
		{"below the minimum is refused", 59, 0, false},
		{"one second is refused", 1, 0, false},
		{"the minimum itself is granted", 60, time.Minute, true},
		{"between is granted as asked", 600, 10 * time.Minute, true},
		{"above the maximum is lowered", 7201, 2 * time.Hour, true},
		{"the largest delta-seconds is lowered", siprule.MaxDeltaSeconds, 2 * time.Hour, true},
		{"beyond delta-seconds is lowered, not wrapped", 1 << 62, 2 * time.Hour, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := p.Grant(tt.requested)
			if got != tt.want || ok != tt.ok {
				t.Fatalf("Grant(%d) = %v, %v; want %v, %v", tt.requested, got, ok, tt.want, tt.ok)
			}
		})
	}
}

func TestExpiryPolicy_OrFillsZeroFieldsConsistently(t *testing.T) {
	def := siprule.ExpiryPolicy{Default: time.Hour, Min: time.Minute, Max: 24 * time.Hour}
	tests := []struct {
		name string
		in   siprule.ExpiryPolicy
		want siprule.ExpiryPolicy
	}{
		{"zero takes the defaults", siprule.ExpiryPolicy{}, def},
		{"set fields are kept", siprule.ExpiryPolicy{Min: time.Second}, siprule.ExpiryPolicy{Default: time.Hour, Min: time.Second, Max: 24 * time.Hour}},
		{"max below min is raised", siprule.ExpiryPolicy{Min: 2 * time.Hour, Max: time.Hour}, siprule.ExpiryPolicy{Default: 2 * time.Hour, Min: 2 * time.Hour, Max: 2 * time.Hour}},
		{"default above max is lowered", siprule.ExpiryPolicy{Default: 48 * time.Hour}, siprule.ExpiryPolicy{Default: 24 * time.Hour, Min: time.Minute, Max: 24 * time.Hour}},
	}
	for _, tt := range tests {
		if got := tt.in.Or(def); got != tt.want {
			t.Errorf("%s: %+v.Or = %+v, want %+v", tt.name, tt.in, got, tt.want)
		}
	}
}

func TestExpiryPolicy_TooBriefCarriesMinExpires(t *testing.T) {
	raw := "SUBSCRIBE sip:1001@hub.test SIP/2.0\r\nVia: SIP/2.0/WS x.invalid;branch=z9hG4bK1\r\nFrom: <sip:1002@hub.test>;tag=a\r\n" +
		"To: <sip:1001@hub.test>\r\nCall-ID: c1\r\nCSeq: 1 SUBSCRIBE\r\nExpires: 5\r\nContent-Length: 0\r\n\r\n"
	msg, err := sip.ParseMessage([]byte(raw))
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		min  time.Duration
		want string
	}{{time.Minute, "60"}, {1500 * time.Millisecond, "2"}, {time.Millisecond, "1"}} {
		res := siprule.ExpiryPolicy{Min: tt.min}.TooBrief(msg.(*sip.Request))
		if res.StatusCode != 423 || res.Reason != "Interval Too Brief" || res.GetHeader("Min-Expires").Value() != tt.want {
			t.Errorf("Min %v: %d %s, Min-Expires %s; want 423, %s", tt.min, res.StatusCode, res.Reason, res.GetHeader("Min-Expires").Value(), tt.want)
		}
	}
}

// A request that only ends state gets what it asks for below the minimum
// (Kamailio's hang-up asks for 11 s), never more than the maximum.
func TestExpiryPolicy_GrantEnding(t *testing.T) {
	p := siprule.ExpiryPolicy{Default: time.Hour, Min: time.Minute, Max: 24 * time.Hour}
	for _, tt := range []struct {
		requested int
		want      time.Duration
	}{
		{11, 11 * time.Second},
		{1, time.Second},
		{59, 59 * time.Second},
		{siprule.MaxDeltaSeconds, 24 * time.Hour},
	} {
		if _, ok := p.Grant(tt.requested); ok && tt.requested < 60 {
			t.Errorf("Grant(%d) ok below the minimum", tt.requested)
		}
		if got := p.GrantEnding(tt.requested); got != tt.want {
			t.Errorf("GrantEnding(%d) = %v, want %v", tt.requested, got, tt.want)
		}
	}
}

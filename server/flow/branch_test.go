package flow

import (
	"fmt"
	"testing"

	"github.com/emiago/sipgo/sip"
)

func TestNewBranch_ShapeMatchedByScanAnswer(t *testing.T) {
	seen := map[Branch]bool{}
	for range 1000 {
		b := NewBranch()
		parsed, ok := ParseBranch(b.String())
		if !ownBranch([]byte(b.String())) || !ok || parsed != b || seen[b] {
			t.Fatalf("branch %q: own shape %v, parsed back %v, repeated %v", b, ownBranch([]byte(b.String())), ok && parsed == b, seen[b])
		}
		seen[b] = true
	}
}

func TestScanAnswer(t *testing.T) {
	const own = "z9hG4bKabcdefghij012345"
	tests := []struct {
		name     string
		msg      string
		wantCode int // 0: declined
	}{
		{"200 from JsSIP", "SIP/2.0 200 OK\r\nVia: SIP/2.0/WSS hub.test;branch=" + own + ";received=1.2.3.4\r\nCSeq: 2 NOTIFY\r\n\r\n", 200},
		{"481 with Via later in the header", "SIP/2.0 481 Gone\r\nCSeq: 2 NOTIFY\r\nVia: SIP/2.0/WS hub.test:443;branch=" + own + "\r\n\r\n", 481},
		{"provisional", "SIP/2.0 180 Ringing\r\nVia: SIP/2.0/WS hub.test;branch=" + own + "\r\n\r\n", 0},
		{"a request", "NOTIFY sip:a@b SIP/2.0\r\nVia: SIP/2.0/WS hub.test;branch=" + own + "\r\n\r\n", 0},
		{"no end of header", "SIP/2.0 200 OK\r\nVia: SIP/2.0/WS hub.test;branch=" + own + "\r\n", 0},
		{"folded Via", "SIP/2.0 200 OK\r\nVia: SIP/2.0/WS hub.test\r\n ;branch=" + own + "\r\n\r\n", 0},
		{"compact Via", "SIP/2.0 200 OK\r\nv: SIP/2.0/WS hub.test;branch=" + own + "\r\n\r\n", 0},
		{"empty parameter", "SIP/2.0 200 OK\r\nVia: SIP/2.0/WS hub.test;;branch=" + own + "\r\n\r\n", 0},
		{"two branches", "SIP/2.0 200 OK\r\nVia: SIP/2.0/WS hub.test;branch=" + own + ";branch=" + own + "\r\n\r\n", 0},
		{"malformed sent-by", "SIP/2.0 200 OK\r\nVia: SIP/2.0/WS hub test;branch=" + own + "\r\n\r\n", 0},
		{"a branch not of the hub's shape", "SIP/2.0 200 OK\r\nVia: SIP/2.0/WS hub.test;branch=z9hG4bK1\r\n\r\n", 0},
		{"a Via only in the body", "SIP/2.0 200 OK\r\nCSeq: 2 NOTIFY\r\n\r\nVia: SIP/2.0/WS hub.test;branch=" + own + "\r\n", 0},
		{"second Via value on the line", "SIP/2.0 200 OK\r\nVia: SIP/2.0/WS hub.test;branch=" + own + ",SIP/2.0/WS p;branch=z9hG4bKother\r\n\r\n", 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, branch, ok := ScanAnswer([]byte(tt.msg))
			switch {
			case tt.wantCode == 0 && ok:
				t.Fatalf("matched %d %q, want the full parse", code, branch)
			case tt.wantCode != 0 && (!ok || code != tt.wantCode || branch.String() != own):
				t.Fatalf("got %d %q %v, want %d %q", code, branch, ok, tt.wantCode, own)
			}
		})
	}
}

// FuzzScanAnswer: for responses shaped like a client's answer to a NOTIFY
// (status line, Via with transport, host, parameters, then other headers),
// the fast path either declines or agrees with sipgo's full parse on the
// status code and the top Via branch; and it only ever claims branches
// shaped like the hub's own.
func FuzzScanAnswer(f *testing.F) {
	f.Add(200, "WS", "h.invalid", "z9hG4bKabcdefghij012345", ";received=1.2.3.4", "CSeq: 1 NOTIFY\r\n")
	f.Add(481, "WSS", "10.0.0.1:5060", "z9hG4bK0000000000000000", "", "Via: SIP/2.0/WS b;branch=x\r\n")
	f.Fuzz(func(t *testing.T, code int, transport, host, branch, params, rest string) {
		data := []byte(fmt.Sprintf("SIP/2.0 %d OK\r\nVia: SIP/2.0/%s %s;branch=%s%s\r\n%s\r\n", code, transport, host, branch, params, rest))
		got, scanned, ok := ScanAnswer(data)
		if !ok {
			return
		}
		gotBranch := scanned.String()
		if len(gotBranch) != 23 || gotBranch[:7] != "z9hG4bK" {
			t.Fatalf("claimed branch %q from %q", gotBranch, data)
		}
		msg, err := sip.ParseMessage(data)
		if err != nil {
			return // sipgo refuses it: the hub would drop it anyway
		}
		res, isRes := msg.(*sip.Response)
		if !isRes || res.Via() == nil {
			return
		}
		if b, _ := res.Via().Params.Get("branch"); res.StatusCode != got || b != gotBranch {
			t.Fatalf("scan says %d %q, parser %d %q:\n%q", got, gotBranch, res.StatusCode, b, data)
		}
	})
}

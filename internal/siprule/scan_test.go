package siprule_test

import (
	"fmt"
	"testing"

	"github.com/presencehub/presencehub/internal/siprule"
)

func TestHeaderLines(t *testing.T) {
	type field struct{ name, value string }
	tests := []struct {
		name      string
		msg       string
		want      []field
		folded    string // name of the header that Folded reports
		ended     bool
		malformed bool
		body      string
	}{
		{name: "request with body",
			msg:   "NOTIFY sip:a@b SIP/2.0\r\nVia: SIP/2.0/WS h;branch=z9hG4bKx\r\nCSeq: 2 NOTIFY\r\nContent-Length: 3\r\n\r\nabc",
			want:  []field{{"Via", "SIP/2.0/WS h;branch=z9hG4bKx"}, {"CSeq", "2 NOTIFY"}, {"Content-Length", "3"}},
			ended: true, body: "abc"},
		{name: "white space around names and values is trimmed",
			msg:   "SIP/2.0 200 OK\r\nCall-ID :  c1 \t\r\ni:c2\r\n\r\n",
			want:  []field{{"Call-ID", "c1"}, {"i", "c2"}},
			ended: true},
		{name: "a folded line is one header, Folded says so",
			msg:    "SIP/2.0 200 OK\r\nSubject: a\r\n  b\r\n\tc\r\nCSeq: 1 NOTIFY\r\n\r\n",
			want:   []field{{"Subject", "a"}, {"CSeq", "1 NOTIFY"}},
			folded: "Subject", ended: true},
		{name: "a line without a colon is skipped",
			msg:   "SIP/2.0 200 OK\r\ngarbage\r\nCSeq: 1 NOTIFY\r\n\r\n",
			want:  []field{{"CSeq", "1 NOTIFY"}},
			ended: true, malformed: true},
		{name: "a message cut short has not ended",
			msg:  "SIP/2.0 200 OK\r\nCSeq: 1 NOTIFY\r\nVia: SIP/2.0/WS h",
			want: []field{{"CSeq", "1 NOTIFY"}}},
		{name: "no header at all", msg: "SIP/2.0 200 OK"},
		{name: "a body is never scanned",
			msg:   "SIP/2.0 200 OK\r\nCSeq: 1 NOTIFY\r\n\r\nVia: SIP/2.0/WS h\r\n",
			want:  []field{{"CSeq", "1 NOTIFY"}},
			ended: true, body: "Via: SIP/2.0/WS h\r\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := siprule.ScanHeaders([]byte(tt.msg))
			var got []field
			folded := ""
			for h.Next() {
				got = append(got, field{string(h.Name()), string(h.Value())})
				if raw := string(h.Raw()); raw != string(h.Line())+"\r\n" {
					t.Errorf("Raw %q is not Line %q with its CRLF", raw, h.Line())
				}
				if h.Folded() {
					folded = string(h.Name())
				}
			}
			if len(got) != len(tt.want) {
				t.Fatalf("fields %q, want %q", got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Errorf("field %d = %q, want %q", i, got[i], tt.want[i])
				}
			}
			if folded != tt.folded || h.Ended() != tt.ended || h.Malformed() != tt.malformed || (tt.ended && string(h.Body()) != tt.body) {
				t.Errorf("folded %q ended %v malformed %v body %q; want %q %v %v %q",
					folded, h.Ended(), h.Malformed(), h.Body(), tt.folded, tt.ended, tt.malformed, tt.body)
			}
		})
	}
}

func TestHeaderLines_ValueLenCountsContinuationLines(t *testing.T) {
	tests := []struct {
		field string
		want  int
	}{
		{"Event: dialog", 7},
		{"Event:dialog", 6},
		{"Event: dialog;id=a\r\n b\r\n\tc", 12 + 2 + 2},
		{"Event:", 0},
	}
	for _, tt := range tests {
		h := siprule.ScanHeaders([]byte("SUBSCRIBE sip:a@b SIP/2.0\r\n" + tt.field + "\r\nCSeq: 1 SUBSCRIBE\r\n\r\n"))
		if !h.Next() || h.ValueLen() != tt.want || !h.Next() || !h.Is("cseq", 0) {
			t.Errorf("%q: ValueLen %d, want %d, then CSeq", tt.field, h.ValueLen(), tt.want)
		}
	}
}

func TestHeaderLines_IsMatchesLongAndCompactFormsIgnoringCase(t *testing.T) {
	tests := []struct {
		line string
		want bool
	}{
		{"From: x", true}, {"FROM: x", true}, {"from : x", true}, {"f: x", true}, {"F: x", true},
		{"Fro: x", false}, {"t: x", false}, {"From-X: x", false},
	}
	for _, tt := range tests {
		h := siprule.ScanHeaders([]byte("SIP/2.0 200 OK\r\n" + tt.line + "\r\n\r\n"))
		if !h.Next() {
			t.Fatalf("%q: no header", tt.line)
		}
		if got := h.Is("from", 'f'); got != tt.want {
			t.Errorf("%q: Is(from, f) = %v, want %v", tt.line, got, tt.want)
		}
	}
}

func ExampleHeaderLines() {
	msg := []byte("NOTIFY sip:a@b.invalid SIP/2.0\r\nCall-ID: abc\r\nl: 0\r\n\r\n")
	h := siprule.ScanHeaders(msg)
	for h.Next() {
		if h.Is("call-id", 'i') || h.Is("content-length", 'l') {
			fmt.Printf("%s=%s\n", h.Name(), h.Value())
		}
	}
	// Output:
	// Call-ID=abc
	// l=0
}

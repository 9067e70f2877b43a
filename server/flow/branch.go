package flow

import (
	"bytes"
	"math/rand/v2"

	"github.com/presencehub/presencehub/internal/siprule"
)

// A branch of the hub's own requests is the RFC 3261 magic cookie and
// branchLen random characters of branchChars; ScanAnswer matches only
// branches of that shape without a parse.
const (
	magicCookie = "z9hG4bK"
	branchLen   = 16
	branchChars = "abcdefghijklmnopqrstuvwxyz0123456789"
)

// NewBranch returns the branch for the top Via of a request the hub sends
// (RFC 3261 §8.1.1.7): unique per transaction; not a secret.
func NewBranch() string {
	var b [len(magicCookie) + branchLen]byte
	copy(b[:], magicCookie)
	r := rand.Uint64()
	for i := len(magicCookie); i < len(b); i++ {
		b[i] = branchChars[r%36]
		r /= 36
		if r == 0 {
			r = rand.Uint64()
		}
	}
	return string(b[:])
}

// ownBranch reports whether b has the shape NewBranch makes.
func ownBranch(b []byte) bool {
	if len(b) != len(magicCookie)+branchLen || !bytes.HasPrefix(b, []byte(magicCookie)) {
		return false
	}
	for _, c := range b[len(magicCookie):] {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// ScanAnswer finds the status code and top-Via branch of a final response
// to one of the hub's requests without parsing it: the answer to a NOTIFY
// is matched by its top Via branch alone (RFC 3261 §17.1.3), and a full
// parse costs more than the NOTIFY did. ok is false for anything else,
// which then goes through the parser: a provisional response, a folded or
// unusually spaced Via, an empty or repeated parameter, a malformed
// sent-by, a branch not shaped like NewBranch's.
func ScanAnswer(data []byte) (code int, branch string, ok bool) {
	if len(data) < 13 || string(data[:8]) != "SIP/2.0 " || data[11] != ' ' {
		return 0, "", false
	}
	for _, c := range data[8:11] {
		if c < '0' || c > '9' {
			return 0, "", false
		}
		code = code*10 + int(c-'0')
	}
	if code < 200 {
		return 0, "", false
	}
	var line []byte
	h := siprule.ScanHeaders(data)
	for h.Next() {
		if line == nil && h.Is("via", 'v') {
			if h.Folded() {
				return 0, "", false // RFC 3261 §7.3.1: let the parser unfold it
			}
			line = h.Line()
		}
	}
	if !h.Ended() || !bytes.HasPrefix(line, []byte("Via: ")) {
		return 0, "", false
	}
	line = line[len("Via: "):]
	// sent-protocol and sent-by as the hub writes them: "SIP/2.0/WS host;".
	sp := bytes.IndexByte(line, ' ')
	semi := bytes.IndexByte(line, ';')
	if !bytes.HasPrefix(line, []byte("SIP/2.0/")) || sp <= len("SIP/2.0/") || semi <= sp+1 ||
		!siprule.IsToken(string(line[len("SIP/2.0/"):sp])) || !siprule.ValidSentBy(string(line[sp+1:semi])) {
		return 0, "", false
	}
	if e := bytes.IndexByte(line, ','); e >= 0 {
		line = line[:e]
	}
	if bytes.Contains(line, []byte(";;")) {
		return 0, "", false // an empty parameter: let the parser decide
	}
	j := bytes.Index(line, []byte(";branch="))
	if j < 0 || bytes.Count(line, []byte(";branch=")) != 1 {
		return 0, "", false
	}
	b := line[j+len(";branch="):]
	if e := bytes.IndexByte(b, ';'); e >= 0 {
		b = b[:e]
	}
	if bytes.ContainsAny(b, " \t") || !ownBranch(b) {
		return 0, "", false // unusual spacing or not the hub's shape: let the parser decide
	}
	return code, string(b), true
}

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

// Branch is the top-Via branch of a request the hub sends (RFC 3261
// §8.1.1.7): the magic cookie and branchLen random characters, kept as a
// value so that making one, keying a transaction by it and matching an
// answer to it allocate nothing. The zero Branch is no branch.
type Branch struct{ r [branchLen]byte }

// NewBranch returns a new branch: unique per transaction; not a secret.
func NewBranch() Branch {
	var b Branch
	r := rand.Uint64()
	for i := range b.r {
		b.r[i] = branchChars[r%36]
		r /= 36
		if r == 0 {
			r = rand.Uint64()
		}
	}
	return b
}

// ParseBranch reads a branch of the shape NewBranch makes; ok is false for
// any other (such a branch is no transaction of the hub's).
func ParseBranch(s string) (b Branch, ok bool) {
	if !ownBranch([]byte(s)) {
		return Branch{}, false
	}
	copy(b.r[:], s[len(magicCookie):])
	return b, true
}

// AppendTo appends the branch as it goes in a Via (z9hG4bK…) to dst.
func (b Branch) AppendTo(dst []byte) []byte {
	dst = append(dst, magicCookie...)
	return append(dst, b.r[:]...)
}

// String is the branch as it goes in a Via.
func (b Branch) String() string {
	return string(b.AppendTo(make([]byte, 0, len(magicCookie)+branchLen)))
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
func ScanAnswer(data []byte) (code int, branch Branch, ok bool) {
	if len(data) < 13 || string(data[:8]) != "SIP/2.0 " || data[11] != ' ' {
		return 0, Branch{}, false
	}
	for _, c := range data[8:11] {
		if c < '0' || c > '9' {
			return 0, Branch{}, false
		}
		code = code*10 + int(c-'0')
	}
	if code < 200 {
		return 0, Branch{}, false
	}
	var line []byte
	h := siprule.ScanHeaders(data)
	for h.Next() {
		if line == nil && h.Is("via", 'v') {
			if h.Folded() {
				return 0, Branch{}, false // RFC 3261 §7.3.1: let the parser unfold it
			}
			line = h.Line()
		}
	}
	if !h.Ended() || !bytes.HasPrefix(line, []byte("Via: ")) {
		return 0, Branch{}, false
	}
	line = line[len("Via: "):]
	// sent-protocol and sent-by as the hub writes them: "SIP/2.0/WS host;".
	sp := bytes.IndexByte(line, ' ')
	semi := bytes.IndexByte(line, ';')
	if !bytes.HasPrefix(line, []byte("SIP/2.0/")) || sp <= len("SIP/2.0/") || semi <= sp+1 ||
		!siprule.IsToken(string(line[len("SIP/2.0/"):sp])) || !siprule.ValidSentBy(string(line[sp+1:semi])) {
		return 0, Branch{}, false
	}
	if e := bytes.IndexByte(line, ','); e >= 0 {
		line = line[:e]
	}
	if bytes.Contains(line, []byte(";;")) {
		return 0, Branch{}, false // an empty parameter: let the parser decide
	}
	j := bytes.Index(line, []byte(";branch="))
	if j < 0 || bytes.Count(line, []byte(";branch=")) != 1 {
		return 0, Branch{}, false
	}
	b := line[j+len(";branch="):]
	if e := bytes.IndexByte(b, ';'); e >= 0 {
		b = b[:e]
	}
	if bytes.ContainsAny(b, " \t") || !ownBranch(b) {
		return 0, Branch{}, false // unusual spacing or not the hub's shape: let the parser decide
	}
	copy(branch.r[:], b[len(magicCookie):])
	return code, branch, true
}

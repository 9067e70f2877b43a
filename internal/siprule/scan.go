package siprule

import "bytes"

// HeaderLines scans the header lines of a SIP message (RFC 3261 §7.3)
// without parsing or allocating, for the paths that need a few header
// values and not the message: the start line is skipped, each Next stops on
// one header field, and scanning ends at the empty line before the body. A
// line without a colon is skipped; continuation lines (RFC 3261 §7.3.1
// folding) belong to the field before them: Folded tells that the current
// field has some, ValueLen counts them.
type HeaderLines struct {
	rest      []byte
	line      []byte // current field's first line, without CRLF
	colon     int
	cont      int // bytes of the current field's continuation lines
	ended     bool
	malformed bool
}

// cutCRLF is bytes.Cut(b, "\r\n"), found by scanning for the line feed
// alone (one IndexByte per line instead of a two-byte search).
func cutCRLF(b []byte) (before, after []byte, found bool) {
	for i := 0; ; i++ {
		j := bytes.IndexByte(b[i:], '\n')
		if j < 0 {
			return b, nil, false
		}
		if i += j; i > 0 && b[i-1] == '\r' {
			return b[:i-1], b[i+1:], true
		}
	}
}

// ScanHeaders returns a scanner of msg's header lines.
func ScanHeaders(msg []byte) HeaderLines {
	_, rest, ok := cutCRLF(msg)
	if !ok {
		rest = nil
	}
	return HeaderLines{rest: rest}
}

// Next moves to the next header line; false at the end of the header (or
// of a message without one).
func (h *HeaderLines) Next() bool {
	for len(h.rest) > 0 {
		line, rest, found := cutCRLF(h.rest)
		if !found {
			h.rest = nil
			return false // no end of header: a truncated message
		}
		h.rest = rest
		if len(line) == 0 {
			h.ended = true
			h.rest = rest
			return false
		}
		if line[0] == ' ' || line[0] == '\t' {
			continue // the continuation of the previous line
		}
		if c := bytes.IndexByte(line, ':'); c > 0 {
			h.line, h.colon, h.cont = line, c, 0
			for len(h.rest) > 0 && (h.rest[0] == ' ' || h.rest[0] == '\t') {
				more, rest, found := cutCRLF(h.rest)
				if !found {
					break // cut short: the next Next ends the scan
				}
				h.cont += len(more)
				h.rest = rest
			}
			return true
		}
		h.malformed = true
	}
	return false
}

// Line is the current field's first line without its CRLF.
func (h *HeaderLines) Line() []byte { return h.line }

// Raw is the current field's first line with its CRLF, as it is in the message
// (to copy it into an answer, RFC 3261 §8.2.6.2).
func (h *HeaderLines) Raw() []byte { return h.line[:len(h.line)+2] }

// Name is the current header name, white space trimmed.
func (h *HeaderLines) Name() []byte { return bytes.TrimSpace(h.line[:h.colon]) }

// Value is the current header value, white space trimmed (without any
// continuation lines).
func (h *HeaderLines) Value() []byte { return bytes.TrimSpace(h.line[h.colon+1:]) }

// ValueLen is the length of the current value as written after the colon,
// continuation lines included: what a size limit counts.
func (h *HeaderLines) ValueLen() int { return len(h.line) - h.colon - 1 + h.cont }

// Is reports whether the current header is name (given in lower case) or
// its compact form (0: none), ignoring case (RFC 3261 §7.3.3).
func (h *HeaderLines) Is(name string, compact byte) bool {
	n := h.Name()
	if len(n) == 1 {
		return compact != 0 && n[0]|0x20 == compact
	}
	if len(n) != len(name) {
		return false
	}
	for i := range n {
		c := n[i]
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != name[i] {
			return false
		}
	}
	return true
}

// Folded reports whether the current field continues on further lines.
func (h *HeaderLines) Folded() bool {
	return h.cont > 0 || len(h.rest) > 0 && (h.rest[0] == ' ' || h.rest[0] == '\t')
}

// Malformed reports whether a line without a name and colon was skipped.
func (h *HeaderLines) Malformed() bool { return h.malformed }

// Ended reports, once Next returned false, whether the header ended with
// an empty line (false: the message was cut short).
func (h *HeaderLines) Ended() bool { return h.ended }

// Body is what follows the header, once Next returned false and Ended is
// true.
func (h *HeaderLines) Body() []byte { return h.rest }

package siprule

import (
	"bytes"
	"strconv"
	"strings"
)

// PlainRequest is a SIP request read by ScanPlain without sipgo's parse:
// what a handler reads of it and the header values its answer copies (RFC
// 3261 §8.2.6.2), as slices of the message. A header the request lacks is
// nil; one present with an empty value is empty and not nil.
type PlainRequest struct {
	Method []byte // upper case, as sipgo's parse leaves it
	// User and Host of the Request-URI (sip: or sips:, no parameters).
	User, Host []byte
	vias       [maxPlainVias][]byte
	nVias      int
	// From, To, CallID and CSeq are the values of the headers an answer
	// copies, white space trimmed.
	From, To, CallID, CSeq []byte
	CSeqMethod             []byte // the method named by CSeq
	ToTagged               bool   // To has a tag parameter
	// The first header field of each of these names, its value white space
	// trimmed (SIP-If-Match: the only one).
	Expires, Event, IfMatch, ContentType, Authorization []byte
	// Headers is how many header fields sipgo's parse would hold (Server's
	// MaxHeaders counts them).
	Headers int
	// LongestValue is the length of the longest header value as written
	// after its colon (HeaderLines.ValueLen: what a size limit counts).
	LongestValue int
	Body         []byte
}

// maxPlainVias is how many Via header fields a plain request may have: a
// client's own, and a few proxies'.
const maxPlainVias = 4

// maxPlainMessage is sipgo's ParseMaxMessageLength: a longer message is
// refused by its parse.
const maxPlainMessage = 65535

// Vias are the Via header values, top first.
func (r *PlainRequest) Vias() [][]byte { return r.vias[:r.nVias] }

// ScanPlain reads msg when it is a SIP request in the plain form that
// sipgo's parse accepts and reads to the same values, and that the hub can
// answer by copying its header lines: ok is false for anything else (a
// response, folded or compact headers, a header field sipgo parses that is
// not read here such as Contact or Route, duplicates of single-instance
// headers, Via rport, a non-ASCII or control byte in a value the answer
// copies, a body shorter than its Content-Length …), which is then parsed
// by sipgo and refused or answered as before. It allocates nothing.
//
// The forms read: the request line "METHOD sip:user@host[:port] SIP/2.0";
// Via "SIP/2.0/transport host[:port](;name[=value])*" with token names and
// values; From and To "[display name] <sip:user@host[:port](;param)*>(;name[=value])*";
// Call-ID as RFC 3261 §25.1 callid; CSeq "number METHOD" (no leading
// zero: the answer copies it as written, sipgo would rewrite it); Content-Length
// and Max-Forwards as numbers.
func ScanPlain(msg []byte) (r PlainRequest, ok bool) {
	if len(msg) > maxPlainMessage {
		return r, false
	}
	line, rest, ok := nextPlainLine(msg)
	if !ok || !r.scanRequestLine(line) {
		return r, false
	}
	contentLength := -1
	for {
		line, rest, ok = nextPlainLine(rest)
		if !ok {
			return r, false
		}
		if len(line) == 0 {
			break // the end of the header
		}
		colon := bytes.IndexByte(line, ':')
		if colon < 2 || !isTokenBytes(line[:colon]) { // a one-letter name is a compact form
			return r, false
		}
		name, value := line[:colon], bytes.TrimSpace(line[colon+1:]) // as sipgo trims it
		if value == nil {
			value = line[len(line):] // present, empty: not nil
		}
		r.Headers++
		r.LongestValue = max(r.LongestValue, len(line)-colon-1)
		switch {
		case equalFold(name, "via"):
			if r.nVias == maxPlainVias || !plainVia(value) {
				return r, false
			}
			r.vias[r.nVias] = value
			r.nVias++
		case equalFold(name, "from"):
			if r.From != nil || !plainAddr(value, nil) {
				return r, false
			}
			r.From = value
		case equalFold(name, "to"):
			if r.To != nil || !plainAddr(value, &r.ToTagged) {
				return r, false
			}
			r.To = value
		case equalFold(name, "call-id"):
			if r.CallID != nil || !ValidCallID(string(value)) {
				return r, false
			}
			r.CallID = value
		case equalFold(name, "cseq"):
			sp := bytes.IndexByte(value, ' ')
			if r.CSeq != nil || sp < 0 || !plainNumber(value[:sp], 1<<31-1) || sp > 1 && value[0] == '0' || !isUpperAlpha(value[sp+1:]) {
				return r, false
			}
			r.CSeq, r.CSeqMethod = value, value[sp+1:]
		case equalFold(name, "content-length"):
			if contentLength >= 0 || !plainNumber(value, maxPlainMessage) {
				return r, false
			}
			contentLength, _ = strconv.Atoi(string(value))
		case equalFold(name, "content-type"):
			if r.ContentType != nil || len(value) == 0 {
				return r, false
			}
			r.ContentType = value
		case equalFold(name, "max-forwards"):
			if !plainNumber(value, 1<<32-1) {
				return r, false
			}
		case equalFold(name, "contact"), equalFold(name, "route"), equalFold(name, "record-route"),
			equalFold(name, "refer-to"), equalFold(name, "referred-by"):
			return r, false // parsed by sipgo, not read here
		case equalFold(name, "expires"):
			if r.Expires == nil {
				r.Expires = value
			}
		case equalFold(name, "event"):
			if r.Event == nil {
				r.Event = value
			}
		case equalFold(name, "sip-if-match"):
			if r.IfMatch != nil {
				return r, false
			}
			r.IfMatch = value
		case equalFold(name, "authorization"):
			if r.Authorization == nil {
				r.Authorization = value
			}
		}
	}
	if r.nVias == 0 || r.From == nil || r.To == nil || r.CallID == nil || r.CSeq == nil {
		return r, false
	}
	switch {
	case contentLength > len(rest):
		return r, false // sipgo: body incomplete
	case contentLength >= 0:
		rest = rest[:contentLength]
	}
	if len(rest) > 0 {
		r.Body = rest
		if contentLength < 0 {
			r.Headers++ // sipgo adds the Content-Length
		}
	}
	return r, true
}

// nextPlainLine cuts the line before the next CRLF; a CR without LF is
// refused, as sipgo refuses it. Its bytes are checked by the grammar of
// what is read of them: the values not read (and never copied into an
// answer) may hold anything sipgo accepts.
func nextPlainLine(b []byte) (line, rest []byte, ok bool) {
	i := bytes.IndexByte(b, '\r')
	if i < 0 || i+1 == len(b) || b[i+1] != '\n' {
		return nil, nil, false
	}
	return b[:i], b[i+2:], true
}

func (r *PlainRequest) scanRequestLine(line []byte) bool {
	sp := bytes.IndexByte(line, ' ')
	if sp < 1 || !isUpperAlpha(line[:sp]) {
		return false
	}
	r.Method = line[:sp]
	uri, ok := bytes.CutSuffix(line[sp+1:], []byte(" SIP/2.0"))
	if !ok {
		return false
	}
	var params bool
	r.User, r.Host, params, ok = plainURI(uri)
	return ok && !params && len(r.User) > 0
}

// plainURI reads "sip:" or "sips:", then user@host[:port][;params]: the
// user of unreserved characters, the host a name or IPv4 address, params
// token names with token values. params tells whether there were any.
func plainURI(uri []byte) (user, host []byte, params, ok bool) {
	rest, ok := bytes.CutPrefix(uri, []byte("sip:"))
	if !ok {
		if rest, ok = bytes.CutPrefix(uri, []byte("sips:")); !ok {
			return nil, nil, false, false
		}
	}
	if at := bytes.IndexByte(rest, '@'); at >= 0 {
		user, rest = rest[:at], rest[at+1:]
		if len(user) == 0 || !allIn(user, isUserChar) {
			return nil, nil, false, false
		}
	}
	end := bytes.IndexByte(rest, ';')
	if end < 0 {
		end = len(rest)
	}
	host, port, hasPort := bytes.Cut(rest[:end], []byte(":"))
	if len(host) == 0 || !allIn(host, isHostChar) || hasPort && !plainPort(port) {
		return nil, nil, false, false
	}
	if end < len(rest) {
		if !plainParams(rest[end:]) {
			return nil, nil, false, false
		}
		params = true
	}
	return user, host, params, true
}

// plainParams reads (;name[=value])+ with token names and values, each
// name once (RFC 3261 §7.3.1; sipgo keeps only one of a name given twice).
func plainParams(p []byte) bool {
	all := p
	for len(p) > 0 {
		if p[0] != ';' {
			return false
		}
		before := all[:len(all)-len(p)]
		var name, value []byte
		var hasValue bool
		name, value, hasValue, p = nextParam(p)
		if !isTokenBytes(name) || hasValue && !isTokenBytes(value) || hasParam(before, name) {
			return false
		}
	}
	return true
}

// nextParam splits the first ;name[=value] off params (which starts with
// the ';') and returns the rest.
func nextParam(params []byte) (name, value []byte, hasValue bool, rest []byte) {
	params = params[1:]
	end := bytes.IndexByte(params, ';')
	if end < 0 {
		end = len(params)
	}
	name, value, hasValue = bytes.Cut(params[:end], []byte("="))
	return name, value, hasValue, params[end:]
}

// hasParam reports whether the parameters before (;name[=value])* include
// name, ASCII case ignored.
func hasParam(before, name []byte) bool {
	for len(before) > 0 {
		var n []byte
		n, _, _, before = nextParam(before)
		if bytes.EqualFold(n, name) {
			return true
		}
	}
	return false
}

// plainVia reads SIP/2.0/transport host[:port](;name[=value])*, without
// rport or received (RFC 3581 and RFC 3261 §18.2.1: the hub sets received
// itself).
func plainVia(v []byte) bool {
	rest, ok := bytes.CutPrefix(v, []byte("SIP/2.0/"))
	if !ok {
		return false
	}
	sp := bytes.IndexByte(rest, ' ')
	if sp < 1 || !isTokenBytes(rest[:sp]) {
		return false
	}
	rest = rest[sp+1:]
	end := bytes.IndexByte(rest, ';')
	if end < 0 {
		end = len(rest)
	}
	host, port, hasPort := bytes.Cut(rest[:end], []byte(":"))
	if len(host) == 0 || !allIn(host, isHostChar) || hasPort && !plainPort(port) {
		return false
	}
	params := rest[end:]
	if !plainParams(params) {
		return false
	}
	for len(params) > 0 {
		var name []byte
		name, _, _, params = nextParam(params)
		if equalFold(name, "rport") || equalFold(name, "received") {
			return false
		}
	}
	return true
}

// plainAddr reads [display name] <sip:…>(;name[=value])*: the display name
// quoted (no escapes) or tokens separated by single spaces. tagged, when
// not nil, is set when a tag parameter is present.
func plainAddr(v []byte, tagged *bool) bool {
	lt := bytes.IndexByte(v, '<')
	if lt < 0 {
		return false
	}
	if name := v[:lt]; len(name) > 0 {
		if name[0] == '"' {
			q := bytes.IndexByte(name[1:], '"')
			if q < 0 || !allIn(name[1:q+1], isQuotable) || !allIn(name[q+2:], isSpace) {
				return false
			}
		} else if name[len(name)-1] != ' ' || !plainWords(name[:len(name)-1]) {
			return false
		}
	}
	gt := bytes.IndexByte(v, '>')
	if gt < lt {
		return false
	}
	if _, _, _, ok := plainURI(v[lt+1 : gt]); !ok {
		return false
	}
	params := v[gt+1:]
	if !plainParams(params) {
		return false
	}
	for len(params) > 0 {
		var name []byte
		name, _, _, params = nextParam(params)
		if equalFold(name, "tag") {
			if string(name) != "tag" {
				return false // sipgo looks for "tag" as written
			}
			if tagged != nil {
				*tagged = true
			}
		}
	}
	return true
}

// plainWords reads tokens separated by single spaces.
func plainWords(b []byte) bool {
	for {
		w, rest, more := bytes.Cut(b, []byte(" "))
		if !isTokenBytes(w) {
			return false
		}
		if !more {
			return true
		}
		b = rest
	}
}

// plainPort reads a port, 1 to 65535 without a leading zero (sipgo drops
// port 0 and would write 05060 as 5060).
func plainPort(b []byte) bool { return plainNumber(b, 65535) && b[0] != '0' }

// plainNumber reads 1 to 10 digits of a value at most max.
func plainNumber(b []byte, max uint64) bool {
	if len(b) == 0 || len(b) > 10 {
		return false
	}
	n := uint64(0)
	for _, c := range b {
		if c < '0' || c > '9' {
			return false
		}
		n = n*10 + uint64(c-'0')
	}
	return n <= max
}

func isUpperAlpha(b []byte) bool {
	return len(b) > 0 && allIn(b, func(c byte) bool { return c >= 'A' && c <= 'Z' })
}

func isTokenBytes(b []byte) bool { return len(b) > 0 && allIn(b, isTokenChar) }

func isTokenChar(c byte) bool { return plainChars[c]&cToken != 0 }

func isUserChar(c byte) bool { return plainChars[c]&cUser != 0 }

func isHostChar(c byte) bool { return plainChars[c]&cHost != 0 }

// Character classes of the plain form.
const (
	cText  = 1 << iota // printable ASCII
	cToken             // RFC 3261 §25.1 token
	cUser              // unreserved and the user-unreserved that cannot be read as a separator
	cHost              // host names and IPv4 addresses
)

var plainChars = func() (t [256]uint8) {
	for c := 0x20; c < 0x7f; c++ {
		t[c] |= cText
	}
	for c := 0; c < 256; c++ {
		alnum := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		if alnum || c < 0x80 && strings.IndexByte("-.!%*_+`'~", byte(c)) >= 0 {
			t[c] |= cToken
		}
		if alnum || c < 0x80 && strings.IndexByte("-_.!~*'()&=+$", byte(c)) >= 0 {
			t[c] |= cUser
		}
		if alnum || c == '.' || c == '-' {
			t[c] |= cHost
		}
	}
	return t
}()

func isSpace(c byte) bool { return c == ' ' }

// isQuotable: printable ASCII but the quote and the escape.
func isQuotable(c byte) bool { return plainChars[c]&cText != 0 && c != '"' && c != '\\' }

func allIn(b []byte, in func(byte) bool) bool {
	for _, c := range b {
		if !in(c) {
			return false
		}
	}
	return true
}

// equalFold reports whether b is name (given in lower case), ASCII case
// ignored.
func equalFold(b []byte, name string) bool {
	if len(b) != len(name) {
		return false
	}
	for i := range b {
		if lowerASCII(b[i]) != name[i] {
			return false
		}
	}
	return true
}

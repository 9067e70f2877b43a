package loadgen

import (
	"bytes"
	"hash/maphash"
	"strconv"

	"github.com/presencehub/presencehub/internal/siprule"
)

// The generator's SIP is hand-rolled: it only ever builds SUBSCRIBE,
// PUBLISH and 200 responses, and only needs a few header values of what
// comes back. Parsing never allocates; slices point into the message.

// message is the part of a received SIP message the generator looks at.
type message struct {
	request bool
	method  []byte // request method
	status  int    // response status code

	callID   []byte
	cseqNum  uint32
	cseqMeth []byte
	etag     []byte // SIP-ETag
	subState []byte // Subscription-State
	body     []byte

	// answer holds the header lines a response copies from the request
	// (RFC 3261 §8.2.6.2: Via, From, To, Call-ID, CSeq), in order, each
	// with its CRLF.
	answer [8][]byte
	nans   int
}

// parseMessage scans msg. It reports false when msg is not a SIP message
// the generator can use (no start line, no header end).
func parseMessage(msg []byte, m *message) bool {
	*m = message{}
	end := bytes.Index(msg, crlf)
	if end < 0 {
		return false
	}
	line := msg[:end]
	if bytes.HasPrefix(line, sipVersion) {
		// SIP/2.0 200 OK
		if len(line) < 12 {
			return false
		}
		code, ok := atoi(line[8:11])
		if !ok {
			return false
		}
		m.status = code
	} else {
		sp := bytes.IndexByte(line, ' ')
		if sp <= 0 {
			return false
		}
		m.request = true
		m.method = line[:sp]
	}
	clen := -1
	h := siprule.ScanHeaders(msg)
	for h.Next() {
		if h.Folded() {
			return false // the hub never folds; an answer could not copy it
		}
		hl := h.Raw() // with CRLF
		switch headerID(h.Name()) {
		case hVia, hFrom, hTo:
			m.addAnswer(hl)
		case hCallID:
			m.addAnswer(hl)
			m.callID = h.Value()
		case hCSeq:
			m.addAnswer(hl)
			val := h.Value()
			sp := bytes.IndexByte(val, ' ')
			if sp > 0 {
				n, _ := atoi(val[:sp])
				m.cseqNum = uint32(n)
				m.cseqMeth = bytes.TrimSpace(val[sp+1:])
			}
		case hETag:
			m.etag = h.Value()
		case hSubState:
			m.subState = h.Value()
		case hContentLength:
			clen, _ = atoi(h.Value())
		}
	}
	if !h.Ended() || h.Malformed() {
		return false
	}
	m.body = h.Body()
	if clen >= 0 && clen < len(m.body) {
		m.body = m.body[:clen]
	}
	return true
}

func (m *message) addAnswer(line []byte) {
	if m.nans < len(m.answer) {
		m.answer[m.nans] = line
		m.nans++
	}
}

var (
	crlf       = []byte("\r\n")
	sipVersion = []byte("SIP/2.0 ")
)

const (
	hOther = iota
	hVia
	hFrom
	hTo
	hCallID
	hCSeq
	hETag
	hSubState
	hContentLength
)

// headerID names the headers the generator uses, long and compact forms
// (RFC 3261 §7.3.3), case-insensitively.
func headerID(name []byte) int {
	switch len(name) {
	case 1:
		switch name[0] | 0x20 {
		case 'v':
			return hVia
		case 'f':
			return hFrom
		case 't':
			return hTo
		case 'i':
			return hCallID
		case 'l':
			return hContentLength
		}
	case 2:
		if eqFold(name, "to") {
			return hTo
		}
	case 3:
		if eqFold(name, "via") {
			return hVia
		}
	case 4:
		if eqFold(name, "from") {
			return hFrom
		} else if eqFold(name, "cseq") {
			return hCSeq
		}
	case 7:
		if eqFold(name, "call-id") {
			return hCallID
		}
	case 8:
		if eqFold(name, "sip-etag") {
			return hETag
		}
	case 14:
		if eqFold(name, "content-length") {
			return hContentLength
		}
	case 18:
		if eqFold(name, "subscription-state") {
			return hSubState
		}
	}
	return hOther
}

// eqFold compares b with lower-case ASCII s, ignoring case.
func eqFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range b {
		c := b[i]
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != s[i] {
			return false
		}
	}
	return true
}

// atoi parses a non-negative decimal integer.
func atoi(b []byte) (int, bool) {
	if len(b) == 0 || len(b) > 18 {
		return 0, false
	}
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

// appendOK appends the 200 response to the request m (RFC 3261 §8.2.6.2).
func appendOK(dst []byte, m *message) []byte {
	dst = append(dst, "SIP/2.0 200 OK\r\n"...)
	for _, l := range m.answer[:m.nans] {
		dst = append(dst, l...)
	}
	return append(dst, "Content-Length: 0\r\n\r\n"...)
}

// ua is what a generator socket puts in the requests it sends.
type ua struct {
	domain string // SIP domain of every AOR
	host   string // <random>.invalid: Via and Contact host, like browser clients
	user   string // token subject
	tag    string // From tag
	branch []byte // branch prefix; a counter is appended
	nbr    uint64
}

func (u *ua) appendVia(dst []byte) []byte {
	dst = append(dst, "Via: SIP/2.0/WS "...)
	dst = append(dst, u.host...)
	dst = append(dst, ";branch="...)
	dst = append(dst, u.branch...)
	u.nbr++
	dst = strconv.AppendUint(dst, u.nbr, 36)
	return append(dst, "\r\n"...)
}

func (u *ua) appendAOR(dst []byte, user string) []byte {
	dst = append(dst, "sip:"...)
	dst = append(dst, user...)
	dst = append(dst, '@')
	return append(dst, u.domain...)
}

// appendSubscribe appends an initial dialog-event SUBSCRIBE for resource user.
func (u *ua) appendSubscribe(dst []byte, resource, callID string, expires int) []byte {
	dst = append(dst, "SUBSCRIBE "...)
	dst = u.appendAOR(dst, resource)
	dst = append(dst, " SIP/2.0\r\n"...)
	dst = u.appendVia(dst)
	dst = append(dst, "Max-Forwards: 70\r\nTo: <"...)
	dst = u.appendAOR(dst, resource)
	dst = append(dst, ">\r\nFrom: <"...)
	dst = u.appendAOR(dst, u.user)
	dst = append(dst, ">;tag="...)
	dst = append(dst, u.tag...)
	dst = append(dst, "\r\nCall-ID: "...)
	dst = append(dst, callID...)
	dst = append(dst, "\r\nCSeq: 1 SUBSCRIBE\r\nContact: <sip:"...)
	dst = append(dst, u.user...)
	dst = append(dst, '@')
	dst = append(dst, u.host...)
	dst = append(dst, ";transport=ws>\r\nEvent: dialog\r\nAccept: application/dialog-info+xml\r\nExpires: "...)
	dst = strconv.AppendInt(dst, int64(expires), 10)
	return append(dst, "\r\nContent-Length: 0\r\n\r\n"...)
}

// appendPublish appends a dialog-event PUBLISH for resource user with body;
// etag, when set, makes it a modification (RFC 3903 §4.4).
func (u *ua) appendPublish(dst []byte, resource, callID string, cseq uint32, etag string, expires int, body []byte) []byte {
	dst = append(dst, "PUBLISH "...)
	dst = u.appendAOR(dst, resource)
	dst = append(dst, " SIP/2.0\r\n"...)
	dst = u.appendVia(dst)
	dst = append(dst, "Max-Forwards: 70\r\nTo: <"...)
	dst = u.appendAOR(dst, resource)
	dst = append(dst, ">\r\nFrom: <"...)
	dst = u.appendAOR(dst, resource)
	dst = append(dst, ">;tag="...)
	dst = append(dst, u.tag...)
	dst = append(dst, "\r\nCall-ID: "...)
	dst = append(dst, callID...)
	dst = append(dst, "\r\nCSeq: "...)
	dst = strconv.AppendUint(dst, uint64(cseq), 10)
	dst = append(dst, " PUBLISH\r\nEvent: dialog\r\nExpires: "...)
	dst = strconv.AppendInt(dst, int64(expires), 10)
	dst = append(dst, "\r\n"...)
	if etag != "" {
		dst = append(dst, "SIP-If-Match: "...)
		dst = append(dst, etag...)
		dst = append(dst, "\r\n"...)
	}
	dst = append(dst, "Content-Type: application/dialog-info+xml\r\nContent-Length: "...)
	dst = strconv.AppendInt(dst, int64(len(body)), 10)
	dst = append(dst, "\r\n\r\n"...)
	return append(dst, body...)
}

// Dialog states the publishers alternate between; the state of sequence
// number seq is states[seq%2]. Neither is terminated, so the dialog stays
// in the composed view (RFC 4235 §3.7.1).
var states = [2]string{"early", "confirmed"}

// appendDialogBody appends the dialog-info document a publisher sends for
// resource: one dialog whose local target URI carries the send time (ns
// since the run's start) and the sequence number.
func appendDialogBody(dst []byte, domain, resource string, seq uint64, sentNs int64) []byte {
	dst = append(dst, `<?xml version="1.0" encoding="UTF-8"?>`+"\n"+`<dialog-info xmlns="urn:ietf:params:xml:ns:dialog-info" version="0" state="full" entity="sip:`...)
	dst = append(dst, resource...)
	dst = append(dst, '@')
	dst = append(dst, domain...)
	dst = append(dst, `">`+"\n"+`<dialog id="bench-`...)
	dst = append(dst, resource...)
	dst = append(dst, `" call-id="bench-`...)
	dst = append(dst, resource...)
	dst = append(dst, `" direction="recipient"><state>`...)
	dst = append(dst, states[seq%2]...)
	dst = append(dst, `</state><local><identity>sip:`...)
	dst = append(dst, resource...)
	dst = append(dst, '@')
	dst = append(dst, domain...)
	dst = append(dst, `</identity><target uri="sip:`...)
	dst = append(dst, resource...)
	dst = append(dst, `@bench.invalid;ts=`...)
	dst = strconv.AppendInt(dst, sentNs, 10)
	dst = append(dst, ";seq="...)
	dst = strconv.AppendUint(dst, seq, 10)
	return append(dst, `"/></local></dialog>`+"\n</dialog-info>\n"...)
}

// dialogBody is what the generator reads from a NOTIFY's dialog-info body.
type dialogBody struct {
	version  uint64
	hasVer   bool
	entityOK bool   // entity is the expected AOR
	seq      uint64 // sequence number of the state shown (0: no dialog)
	sentNs   int64  // when that state was published (0: no dialog)
	state    []byte
	hash     uint64 // of the body without the version number
}

var (
	rootOpen    = []byte("<dialog-info")
	versionAttr = []byte(`version="`)
	entityAttr  = []byte(`entity="`)
	tsParam     = []byte(";ts=")
	seqParam    = []byte(";seq=")
	stateOpen   = []byte("<state")
	stateClose  = []byte("</state>")
)

// parseDialogBody reads body, a dialog-info document for aor. Version and
// entity are read in the root element's start tag only (not the XML
// declaration's version, not another element's); the dialog's state and
// the publisher's ;ts= and ;seq= after it.
func parseDialogBody(body []byte, aor string, d *dialogBody) {
	*d = dialogBody{}
	root := bytes.Index(body, rootOpen)
	if root < 0 {
		root = 0
	}
	tagEnd := len(body)
	if gt := bytes.IndexByte(body[root:], '>'); gt >= 0 {
		tagEnd = root + gt + 1
	}
	tag, rest := body[root:tagEnd], body[tagEnd:]
	vs, ve := -1, -1
	if i := bytes.Index(tag, versionAttr); i >= 0 {
		vs = root + i + len(versionAttr)
		ve = vs
		for ve < len(body) && body[ve] >= '0' && body[ve] <= '9' {
			ve++
		}
		if n, ok := atoi(body[vs:ve]); ok {
			d.version, d.hasVer = uint64(n), true
		}
	}
	var h maphash.Hash
	h.SetSeed(hashSeed)
	if vs >= 0 {
		h.Write(body[:vs])
		h.Write(body[ve:])
	} else {
		h.Write(body)
	}
	d.hash = h.Sum64()
	if i := bytes.Index(tag, entityAttr); i >= 0 {
		v := tag[i+len(entityAttr):]
		d.entityOK = len(v) > len(aor) && string(v[:len(aor)]) == aor && v[len(aor)] == '"'
	}
	if i := bytes.Index(rest, stateOpen); i >= 0 {
		st := rest[i+len(stateOpen):]
		if gt := bytes.IndexByte(st, '>'); gt >= 0 {
			st = st[gt+1:]
			if e := bytes.Index(st, stateClose); e >= 0 {
				d.state = st[:e]
			}
		}
	}
	if i := bytes.Index(rest, tsParam); i >= 0 {
		rest = rest[i+len(tsParam):]
		n, l := leadingInt(rest)
		d.sentNs = int64(n)
		rest = rest[l:] // the generator writes ;seq= right after ;ts=
	}
	if !bytes.HasPrefix(rest, seqParam) {
		if i := bytes.Index(rest, seqParam); i >= 0 {
			rest = rest[i:]
		}
	}
	if bytes.HasPrefix(rest, seqParam) {
		n, _ := leadingInt(rest[len(seqParam):])
		d.seq = uint64(n)
	}
}

// leadingInt parses the decimal digits b starts with (0 when none or too
// many) and says how many bytes they are.
func leadingInt(b []byte) (n, digits int) {
	for digits < len(b) && b[digits] >= '0' && b[digits] <= '9' {
		digits++
	}
	n, _ = atoi(b[:digits])
	return n, digits
}

// hashSeed is fixed for the process: body hashes are compared, never stored.
var hashSeed = maphash.MakeSeed()

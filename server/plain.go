package server

import (
	"bytes"
	"math/rand/v2"
	"strconv"

	"github.com/presencehub/presencehub/internal/siprule"
	"github.com/presencehub/presencehub/server/auth"
	"github.com/presencehub/presencehub/server/flow"
)

// handlePlain handles a PUBLISH in the plain form clients and PBXs send
// (siprule.ScanPlain) without sipgo's parse, and reports whether it did:
// its answers copy the request's header lines as received (RFC 3261
// §8.2.6.2). Any other message, and a PUBLISH that handleMessage's checks
// would refuse before its handler (too many or too long header fields, a
// CSeq naming another method), is left to handleMessage's parse, which
// answers it as before.
func (s *Server) handlePlain(fl *flow.Flow, lim *limiter, data []byte) bool {
	if s.parseAll || !bytes.HasPrefix(data, []byte("PUBLISH ")) {
		return false
	}
	r, ok := siprule.ScanPlain(data)
	if !ok || !bytes.Equal(r.CSeqMethod, r.Method) || r.Headers > s.cfg.MaxHeaders || r.LongestValue > s.cfg.MaxHeaderLength {
		return false
	}
	// From here as handleMessage and handleRequest: the rate limit, who
	// sent it, then the handler.
	if !s.allow(fl, lim) {
		s.answerPlain(fl, &r, tooManyRequests)
		return true
	}
	id := s.plainIdentity(fl, &r)
	if id == nil {
		return true
	}
	s.startPublish(fl, lim, s.plainPublish(&r), id)
	return true
}

// plainIdentity is authenticate for a plain request: a Bearer on the
// request first (RFC 8898), else the connection's identity; without one it
// answers 401 and returns nil.
func (s *Server) plainIdentity(fl *flow.Flow, r *siprule.PlainRequest) *auth.Identity {
	if r.Authorization != nil {
		if tok := bearer(string(r.Authorization)); tok != "" {
			id, err := s.cfg.Verifier.Verify(tok)
			if err != nil {
				s.answerPlain(fl, r, s.unauthorizedAnswer(err, "Unauthorized - invalid token"))
				return nil
			}
			fl.SetIdentity(id) // a fresh Bearer extends the connection's life
			return id
		}
	}
	if id := fl.Identity(); id != nil {
		return id
	}
	s.answerPlain(fl, r, s.unauthorizedAnswer(auth.ErrNoToken, "Unauthorized"))
	return nil
}

// plainPublish reads a PUBLISH from its plain scan, which it keeps as its
// answer's source. The values the hub knows (its domain, the event
// packages and body types of the compositor) are not copied; the user is
// read from the resource, made at once. The body is copied: the store
// keeps it, and a slice would keep the whole message.
func (s *Server) plainPublish(r *siprule.PlainRequest) *publishReq {
	p := &publishReq{scanned: *r, host: s.cfg.Domain, requested: -1, body: bytes.Clone(r.Body)}
	p.plain = &p.scanned
	p.resource = siprule.AOR(string(r.User), s.cfg.Domain)
	p.user = p.resource[len("sip:") : len("sip:")+len(r.User)]
	if !equalFold(r.Host, s.cfg.Domain) {
		p.host = string(r.Host)
	}
	if r.Expires != nil {
		var err error
		p.requested, err = siprule.ParseExpires(string(r.Expires))
		p.badExpires = err != nil
	}
	if r.Event != nil {
		pkg, _, _ := bytes.Cut(r.Event, []byte(";"))
		if p.event = known(bytes.TrimSpace(pkg), "dialog", "presence"); p.event == "" {
			p.event = siprule.EventPackage(string(r.Event))
		}
	}
	if r.IfMatch != nil {
		if bytes.IndexByte(r.IfMatch, ',') < 0 {
			p.ifMatchOne[0] = string(r.IfMatch)
			p.ifMatch = p.ifMatchOne[:]
		} else {
			p.ifMatch = appendIfMatch(nil, string(r.IfMatch))
		}
	}
	if r.ContentType != nil {
		mt, _, _ := bytes.Cut(r.ContentType, []byte(";"))
		if p.contentType = known(bytes.TrimSpace(mt), knownMediaTypes[:]...); p.contentType == "" {
			p.contentType = mediaType(string(r.ContentType))
		}
	}
	return p
}

// known returns the one of names that b is, ASCII case ignored, or "".
func known(b []byte, names ...string) string {
	for _, n := range names {
		if equalFold(b, n) {
			return n
		}
	}
	return ""
}

func equalFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range b {
		c, d := b[i], s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if 'A' <= d && d <= 'Z' {
			d += 'a' - 'A'
		}
		if c != d {
			return false
		}
	}
	return true
}

// answerPlain sends a as the answer to r, counted as send counts it.
func (s *Server) answerPlain(fl *flow.Flow, r *siprule.PlainRequest, a answer) {
	s.metrics.response("PUBLISH", a.code) // the only method on the plain path
	_ = fl.Send(appendPlainAnswer(nil, r, a, fl.RemoteIP()))
}

// appendPlainAnswer appends the answer a to r (RFC 3261 §8.2.6): the Via
// lines, From, To, Call-ID and CSeq as received, received= added to the top
// Via (§18.2.1: the sent-by of a WebSocket client is *.invalid) and a tag to
// an untagged To; then a's headers and the hub's Server header, in the
// order and form sipgo's response would have them.
func appendPlainAnswer(dst []byte, r *siprule.PlainRequest, a answer, remoteIP string) []byte {
	if dst == nil {
		n := 256 + len(a.reason) + len(a.etag) + len(a.accept) + len(a.allowEvts) + len(a.challenge) +
			len(r.From) + len(r.To) + len(r.CallID) + len(r.CSeq) + len(remoteIP)
		for _, v := range r.Vias() {
			n += len(v) + 8
		}
		dst = make([]byte, 0, n)
	}
	dst = append(dst, "SIP/2.0 "...)
	dst = strconv.AppendInt(dst, int64(a.code), 10)
	dst = append(dst, ' ')
	dst = append(dst, a.reason...)
	dst = append(dst, "\r\n"...)
	for i, v := range r.Vias() {
		dst = append(dst, "Via: "...)
		dst = append(dst, v...)
		if i == 0 {
			dst = append(dst, ";received"...)
			if remoteIP != "" { // as sipgo writes a parameter without value
				dst = append(dst, '=')
				dst = append(dst, remoteIP...)
			}
		}
		dst = append(dst, "\r\n"...)
	}
	dst = appendField(dst, "From", r.From)
	dst = append(dst, "To: "...)
	dst = append(dst, r.To...)
	if !r.ToTagged {
		dst = append(dst, ";tag="...)
		dst = appendTag(dst)
	}
	dst = append(dst, "\r\n"...)
	dst = appendField(dst, "Call-ID", r.CallID)
	dst = appendField(dst, "CSeq", r.CSeq)
	dst = append(dst, "Content-Length: 0\r\n"...)
	if a.etag != "" {
		dst = appendField(dst, "SIP-ETag", a.etag)
	}
	if a.code/100 == 2 {
		dst = appendIntField(dst, "Expires", int64(a.expires))
	}
	if a.minExpires > 0 {
		dst = appendIntField(dst, "Min-Expires", int64(a.minExpires))
	}
	if a.accept != "" {
		dst = appendField(dst, "Accept", a.accept)
	}
	if a.allowEvts != "" {
		dst = appendField(dst, "Allow-Events", a.allowEvts)
	}
	if a.retryAfter > 0 {
		dst = appendIntField(dst, "Retry-After", int64(a.retryAfter))
	}
	if a.challenge != "" {
		dst = appendField(dst, "WWW-Authenticate", a.challenge)
	}
	dst = appendField(dst, "Server", siprule.Product)
	return append(dst, "\r\n"...)
}

// appendIntField appends "name: value\r\n" with value in decimal.
func appendIntField(dst []byte, name string, value int64) []byte {
	dst = append(dst, name...)
	dst = append(dst, ": "...)
	dst = strconv.AppendInt(dst, value, 10)
	return append(dst, "\r\n"...)
}

// appendField appends "name: value\r\n".
func appendField[V string | []byte](dst []byte, name string, value V) []byte {
	dst = append(dst, name...)
	dst = append(dst, ": "...)
	dst = append(dst, value...)
	return append(dst, "\r\n"...)
}

// appendTag appends a fresh To tag: 64 random bits in hex (RFC 3261 §19.3:
// at least 32 random bits).
func appendTag(dst []byte) []byte {
	const hex = "0123456789abcdef"
	v := rand.Uint64()
	for i := 60; i >= 0; i -= 4 {
		dst = append(dst, hex[v>>uint(i)&0xf])
	}
	return dst
}

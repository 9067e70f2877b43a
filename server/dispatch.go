package server

import (
	"context"
	"errors"
	"strings"

	"github.com/emiago/sipgo/sip"
	"github.com/presencehub/presencehub/compositor"
	"github.com/presencehub/presencehub/internal/siprule"
	"github.com/presencehub/presencehub/server/auth"
	"github.com/presencehub/presencehub/server/flow"
)

const (
	allowMethods = "REGISTER, OPTIONS, PUBLISH, SUBSCRIBE"
	acceptTypes  = compositor.ContentTypePIDF + ", " + compositor.ContentTypeDialogInfo + ", " + compositor.ContentTypeMessageSummary
)

// handleMessage handles one WebSocket message: one SIP message (RFC 7118 §5).
// It runs on the connection's read goroutine and never waits for a peer.
func (s *Server) handleMessage(fl *flow.Flow, lim *limiter, data []byte) {
	// The 200 to each NOTIFY is matched without a parse (flow.ScanAnswer).
	if code, branch, ok := flow.ScanAnswer(data); ok {
		if !fl.HandleAnswer(branch, code) {
			s.log.Debug("stray response", "flow", fl.String(), "status", code)
		}
		return
	}
	// So is a PUBLISH in the form clients and PBXs send.
	if s.handlePlain(fl, lim, data) {
		return
	}
	msg, err := s.parser.ParseSIP(data)
	if err != nil {
		s.metrics.malformed()
		if req, ok := msg.(*sip.Request); ok && answerable(req) && copiedProblem(req).reason == "" {
			s.respond(fl, req, 400, "Bad Request - "+reasonText(err))
		} else {
			s.log.Debug("dropped unparsable message", "flow", fl.String(), "err", err)
		}
		return
	}
	switch m := msg.(type) {
	case *sip.Response:
		if !fl.HandleResponse(m) {
			s.log.Debug("stray response", "flow", fl.String(), "status", m.StatusCode)
		}
	case *sip.Request:
		if !answerable(m) {
			s.metrics.malformed()
			s.log.Debug("dropped request without a usable Via or CSeq", "flow", fl.String())
			return
		}
		if res := copiedRefusal(m); res != nil {
			s.metrics.malformed()
			s.send(fl, m, res)
			return
		}
		if len(m.Headers()) > s.cfg.MaxHeaders {
			s.metrics.limitHit("headers")
			s.respond(fl, m, 400, "Bad Request - too many header fields")
			return
		}
		if name := longHeader(data, s.cfg.MaxHeaderLength); name != "" {
			s.metrics.limitHit("header_length")
			s.respond(fl, m, 400, "Bad Request - header field too long: "+name)
			return
		}
		if m.CSeq().MethodName != m.Method {
			s.respond(fl, m, 400, "Bad Request - CSeq method does not match")
			return
		}
		if !s.allow(fl, lim) {
			s.send(fl, m, tooManyRequests.response(m))
			return
		}
		s.handleRequest(fl, lim, m)
	}
}

// tooManyRequests is the answer to a request over the connection's rate.
var tooManyRequests = answer{code: 503, reason: "Service Unavailable - too many requests", retryAfter: 1}

// allow takes a request's token from the connection's rate limit, at the
// publisher rate when its identity publishes for others; without one it
// counts the refusal, to be answered with tooManyRequests.
func (s *Server) allow(fl *flow.Flow, lim *limiter) bool {
	id := fl.Identity()
	publisher := id != nil && id.PublishesForOthers()
	if lim.allow(publisher) {
		return true
	}
	if publisher {
		s.metrics.limitHit("publisher_requests_per_second")
	} else {
		s.metrics.limitHit("requests_per_second")
	}
	return false
}

// longHeader returns the name of the first header field of msg whose value,
// continuation lines included (RFC 3261 §7.3.1), is longer than limit
// bytes, or "". What a request's headers hold may be kept for a dialog's
// life (a subscription echoes its Event, From, To and route set in every
// NOTIFY), so a value is bounded before anything keeps it.
func longHeader(msg []byte, limit int) string {
	for h := siprule.ScanHeaders(msg); h.Next(); {
		if h.ValueLen() > limit {
			if name := h.Name(); len(name) <= 40 && siprule.IsToken(string(name)) {
				return string(name)
			}
			return "a header field" // not echoed: no valid name
		}
	}
	return ""
}

// answerable reports whether a response can reach the client's transaction:
// it is matched by the top Via branch and the CSeq method (RFC 3261
// §17.1.3), so every Via (all are copied) and the CSeq must be well-formed.
// Anything else is dropped rather than echoed back.
func answerable(r *sip.Request) bool {
	if r.Via() == nil || r.CSeq() == nil {
		return false
	}
	if r.SipVersion != "SIP/2.0" || !siprule.IsToken(string(r.Method)) || !siprule.IsToken(string(r.CSeq().MethodName)) {
		return false
	}
	for _, h := range r.Headers() { // every Via is copied into the response
		if !siprule.HeaderIs(h, "Via") {
			continue
		}
		v, ok := h.(*sip.ViaHeader)
		if !ok || v.ProtocolName != "SIP" || v.ProtocolVersion != "2.0" || !siprule.IsToken(v.Transport) || !siprule.ValidHost(v.Host) || !siprule.ValidText(v.Value()) {
			return false
		}
	}
	return true
}

// copyProblem is what is wrong with the other headers a response copies
// (From, To, Call-ID; RFC 3261 §8.2.6.2), or the zero value.
type copyProblem struct {
	reason string   // the 400's reason phrase, naming the (first) header
	omit   []string // headers left out of the 400: they are not echoed back
}

func (p *copyProblem) add(reason, omit string) {
	if p.reason == "" {
		p.reason = reason
	}
	if omit != "" {
		p.omit = append(p.omit, omit)
	}
}

// singleHeaders may appear once in a request (RFC 3261 §7.3.1: only
// comma-separated list headers may repeat).
var singleHeaders = [...]string{"Call-ID", "CSeq", "From", "To", "Content-Length"}

// copiedProblem checks the headers a response copies besides Via and CSeq
// (answerable): a missing Call-ID gets RFC 3261 §21.4.1's own example,
// "400 Missing Call-ID header field"; a repeated single-instance header, or
// a copied value with bytes outside its syntax (NUL, controls, invalid
// UTF-8), a 400 naming it, without echoing that value.
func copiedProblem(r *sip.Request) copyProblem {
	var p copyProblem
	for _, name := range singleHeaders {
		if siprule.HeaderCount(r, name) > 1 {
			omit := name // which one is meant is unknown
			if name == "CSeq" || name == "Content-Length" {
				omit = "" // the CSeq copied is the parsed one, rewritten; no Content-Length is copied
			}
			p.add("Bad Request - duplicate "+name+" header field", omit)
		}
	}
	if id := r.CallID(); id == nil || id.Value() == "" {
		p.add("Missing Call-ID header field", "Call-ID")
	} else if !siprule.ValidCallID(id.Value()) {
		p.add("Bad Request - invalid Call-ID header field", "Call-ID")
	}
	if from := r.From(); from == nil {
		p.add("Missing From header field", "")
	} else if !validAddr(from.Address) || !validDisplayName(from.DisplayName) || !siprule.ValidText(from.Value()) {
		p.add("Bad Request - invalid From header field", "From")
	}
	if to := r.To(); to == nil {
		p.add("Missing To header field", "")
	} else if !validAddr(to.Address) || !validDisplayName(to.DisplayName) || !siprule.ValidText(to.Value()) {
		p.add("Bad Request - invalid To header field", "To")
	}
	for _, h := range r.Headers() { // Record-Route is copied into a 2xx, and the NOTIFYs' route set
		if !siprule.HeaderIs(h, "Record-Route") {
			continue
		}
		if !siprule.ValidText(h.Value()) {
			p.add("Bad Request - invalid Record-Route header field", "Record-Route")
			break
		}
	}
	return p
}

// copiedRefusal is the 400 for a request with a copiedProblem, or nil.
func copiedRefusal(r *sip.Request) *sip.Response {
	p := copiedProblem(r)
	if p.reason == "" {
		return nil
	}
	res := sip.NewResponseFromRequest(r, 400, p.reason, nil)
	for _, name := range p.omit {
		for res.RemoveHeader(name) { // never echo what is broken
		}
	}
	return res
}

func validAddr(u sip.Uri) bool {
	return !u.Wildcard && (u.Scheme == "sip" || u.Scheme == "sips" || u.Scheme == "tel") && (siprule.ValidHost(u.Host) || u.Scheme == "tel")
}

// validDisplayName reports whether a display name, written back between
// quotes as sipgo writes it, reads again (RFC 3261 §25.1 quoted-string): no
// quote that is not escaped, no escape left open at its end.
func validDisplayName(n string) bool {
	escaped := false
	for i := 0; i < len(n); i++ {
		switch {
		case escaped:
			escaped = false
		case n[i] == '\\':
			escaped = true
		case n[i] == '"':
			return false
		}
	}
	return !escaped
}

// reasonText turns a parse error into a short, safe reason phrase.
func reasonText(err error) string {
	t := err.Error()
	if len(t) > 80 {
		t = t[:80]
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, t)
}

func (s *Server) handleRequest(fl *flow.Flow, lim *limiter, req *sip.Request) {
	switch req.Method {
	case sip.OPTIONS:
		res := sip.NewResponseFromRequest(req, 200, "OK", nil)
		s.capabilities(res)
		s.send(fl, req, res)
	case sip.ACK:
		// Nothing to do: the hub never answers INVITE with a final response that needs one.
	case sip.REGISTER, sip.PUBLISH, sip.SUBSCRIBE:
		id := s.authenticate(fl, req)
		if id == nil {
			return
		}
		switch req.Method {
		case sip.REGISTER:
			s.handleRegister(fl, req, id)
		case sip.PUBLISH:
			s.startPublish(fl, lim, sipPublish(req), id)
		case sip.SUBSCRIBE:
			s.metrics.response("SUBSCRIBE", s.notifier.HandleSubscribe(req, fl, id))
		}
	case sip.NOTIFY:
		// The hub subscribes to nothing (RFC 6665 §4.1.3: unknown dialog).
		s.respond(fl, req, 481, "Subscription Does Not Exist")
	case sip.CANCEL, sip.BYE:
		s.respond(fl, req, 481, "Call/Transaction Does Not Exist")
	default:
		res := sip.NewResponseFromRequest(req, 405, "Method Not Allowed", nil)
		res.AppendHeader(sip.NewHeader("Allow", allowMethods))
		s.send(fl, req, res)
	}
}

func (s *Server) capabilities(res *sip.Response) {
	res.AppendHeader(sip.NewHeader("Allow", allowMethods))
	res.AppendHeader(sip.NewHeader("Accept", acceptTypes))
	res.AppendHeader(sip.NewHeader("Allow-Events", strings.Join(s.notifier.Providers().Events(), ", ")))
	res.AppendHeader(sip.NewHeader("Supported", "outbound, path, eventlist, recipient-list-subscribe"))
}

// authenticate returns who sent req (docs/protocol.md, "Identity"): a Bearer on the request
// first (RFC 8898), else the connection's identity. Without one it answers
// 401 with WWW-Authenticate: Bearer (RFC 8898 §2.3) and returns nil.
func (s *Server) authenticate(fl *flow.Flow, req *sip.Request) *auth.Identity {
	id, res := s.requestBearer(req)
	if res != nil {
		s.send(fl, req, res)
		return nil
	}
	if id != nil {
		fl.SetIdentity(id) // a fresh Bearer extends the connection's life
		return id
	}
	if id := fl.Identity(); id != nil {
		return id
	}
	s.send(fl, req, s.unauthorized(req, auth.ErrNoToken, "Unauthorized"))
	return nil
}

// requestBearer verifies an "Authorization: Bearer" on a SIP request
// (RFC 8898). No Bearer: (nil, nil). An invalid one: the 401 to send.
func (s *Server) requestBearer(req *sip.Request) (*auth.Identity, *sip.Response) {
	h := siprule.Header(req, "Authorization")
	if h == nil {
		return nil, nil
	}
	tok := bearer(h.Value())
	if tok == "" {
		return nil, nil
	}
	id, err := s.cfg.Verifier.Verify(tok)
	if err != nil {
		return nil, s.unauthorized(req, err, "Unauthorized - invalid token")
	}
	return id, nil
}

// unauthorized counts the failure and builds a 401 with a Bearer challenge
// (RFC 8898 §2.3): error="invalid_token" when a token was presented.
func (s *Server) unauthorized(req *sip.Request, cause error, reason string) *sip.Response {
	return s.unauthorizedAnswer(cause, reason).response(req)
}

func (s *Server) unauthorizedAnswer(cause error, reason string) answer {
	s.metrics.authFailure(cause)
	challenge := `Bearer realm="` + s.cfg.Domain + `"`
	if !errors.Is(cause, auth.ErrNoToken) {
		challenge += `, error="invalid_token"`
	}
	return answer{code: 401, reason: reason, challenge: challenge}
}

func (s *Server) respond(fl *flow.Flow, req *sip.Request, code int, reason string) {
	s.send(fl, req, sip.NewResponseFromRequest(req, code, reason, nil))
}

func (s *Server) send(fl *flow.Flow, req *sip.Request, res *sip.Response) {
	siprule.SetServer(res)
	s.metrics.response(string(req.Method), res.StatusCode)
	_ = fl.Respond(res)
}

func (s *Server) handleRegister(fl *flow.Flow, req *sip.Request, id *auth.Identity) {
	to := req.To().Address
	if !id.CanPublish(to.User, to.Host) {
		s.respond(fl, req, 403, "Forbidden - token may not register this AOR")
		return
	}
	aor := siprule.AOR(to.User, to.Host)
	ctx, cancel := context.WithTimeout(s.ctx, registrarTimeout)
	res := s.registrar.Register(ctx, req, aor, fl.ID())
	cancel()
	s.send(fl, req, res)
	if res.StatusCode == 200 {
		s.syncRegPresence(aor)
	}
}

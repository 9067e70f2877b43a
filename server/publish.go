package server

import (
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/presencehub/presencehub/compositor"
	"github.com/presencehub/presencehub/internal/siprule"
	"github.com/presencehub/presencehub/server/auth"
	"github.com/presencehub/presencehub/server/flow"
)

// DefaultPublishExpiry is the publication policy for fields left zero in
// Config.PublishExpiry: 3600 s when the publisher asks for none, 60 s
// minimum, 86400 s maximum (RFC 3903 §6 step 3).
var DefaultPublishExpiry = siprule.ExpiryPolicy{Default: 3600 * time.Second, Min: 60 * time.Second, Max: 86400 * time.Second}

// publishReq is what the PUBLISH handler reads of a request (RFC 3903 §6):
// from sipgo's parse (sipPublish) or from the plain scan of the message
// (plainPublish, siprule.ScanPlain).
type publishReq struct {
	user, host  string // of the Request-URI
	resource    string // siprule.AOR(user, the hub's domain), "": not made yet
	requested   int    // the Expires asked for, -1: none
	badExpires  bool   // an Expires that is not delta-seconds
	event       string // the Event package, lower case ("" without one)
	ifMatch     []string
	contentType string // the media type, lower case, without parameters
	body        []byte
	ifMatchOne  [1]string // ifMatch's room for one entity-tag
	// The answer is built from req (sipgo) or copies plain's header lines.
	req     *sip.Request
	plain   *siprule.PlainRequest // &scanned
	scanned siprule.PlainRequest
}

// sipPublish reads a PUBLISH from sipgo's parse.
func sipPublish(req *sip.Request) *publishReq {
	p := &publishReq{user: req.Recipient.User, host: req.Recipient.Host, body: req.Body(), req: req}
	var err error
	p.requested, err = siprule.Expires(req)
	p.badExpires = err != nil
	p.event, _, _ = siprule.Event(req)
	for _, h := range req.Headers() {
		if siprule.HeaderIs(h, "SIP-If-Match") {
			p.ifMatch = appendIfMatch(p.ifMatch, h.Value())
		}
	}
	if ct := req.ContentType(); ct != nil {
		p.contentType = mediaType(ct.Value())
	}
	return p
}

// appendIfMatch appends the entity-tags of a SIP-If-Match value (RFC 3903
// §11.3.2; a comma-separated list is read as several).
func appendIfMatch(tags []string, v string) []string {
	for _, t := range strings.Split(v, ",") {
		tags = append(tags, strings.TrimSpace(t))
	}
	return tags
}

// mediaType is the media type of a Content-Type value, lower case, without
// parameters.
func mediaType(v string) string {
	mt, _, _ := strings.Cut(v, ";")
	mt = strings.TrimSpace(mt)
	for _, known := range knownMediaTypes {
		if strings.EqualFold(mt, known) {
			return known // not a substring of the message
		}
	}
	return strings.ToLower(mt)
}

// knownMediaTypes are the bodies the compositor reads.
var knownMediaTypes = [...]string{compositor.ContentTypeDialogInfo, compositor.ContentTypePIDF, compositor.ContentTypeMessageSummary}

// startPublish runs the PUBLISH handler for p: concurrently with other
// resources' PUBLISHes, in order with this resource's (lanes).
func (s *Server) startPublish(fl *flow.Flow, lim *limiter, p *publishReq, id *auth.Identity) {
	if lim.lanes == nil {
		lim.lanes = newLanes(lim.inFlight, func(j publishJob) { s.handlePublish(fl, j.req, j.id) })
	}
	lim.lanes.add(p.user, publishJob{p, id})
}

// handlePublish answers a PUBLISH that came over a WebSocket flow.
func (s *Server) handlePublish(fl *flow.Flow, p *publishReq, id *auth.Identity) {
	a := s.publish(p, id)
	if p.plain != nil {
		s.answerPlain(fl, p.plain, a)
		return
	}
	s.send(fl, p.req, a.response(p.req))
}

// answer is a response to build: its status and the headers it adds (those
// of a PUBLISH's answers and a 503's).
type answer struct {
	code       int
	reason     string
	etag       string // SIP-ETag
	expires    int    // Expires, on a 2xx
	minExpires int    // Min-Expires (423)
	accept     string
	allowEvts  string // Allow-Events
	retryAfter int    // Retry-After (seconds, 0: none)
	challenge  string // WWW-Authenticate (401)
}

// response is a as an answer to req, built by sipgo.
func (a answer) response(req *sip.Request) *sip.Response {
	res := sip.NewResponseFromRequest(req, a.code, a.reason, nil)
	if a.etag != "" {
		res.AppendHeader(sip.NewHeader("SIP-ETag", a.etag))
	}
	if a.code/100 == 2 {
		res.AppendHeader(sip.NewHeader("Expires", strconv.Itoa(a.expires)))
	}
	if a.minExpires > 0 {
		res.AppendHeader(sip.NewHeader("Min-Expires", strconv.Itoa(a.minExpires)))
	}
	if a.accept != "" {
		res.AppendHeader(sip.NewHeader("Accept", a.accept))
	}
	if a.allowEvts != "" {
		res.AppendHeader(sip.NewHeader("Allow-Events", a.allowEvts))
	}
	if a.retryAfter > 0 {
		res.AppendHeader(sip.NewHeader("Retry-After", strconv.Itoa(a.retryAfter)))
	}
	if a.challenge != "" {
		res.AppendHeader(sip.NewHeader("WWW-Authenticate", a.challenge))
	}
	return res
}

// publish maps a PUBLISH to the compositor and its answer back to SIP
// (RFC 3903 §6: the expiry grant is the shared siprule.ExpiryPolicy's, every
// other step the compositor's). Both the WebSocket front end and the
// plain-SIP listener for PBXs use it.
func (s *Server) publish(p *publishReq, id *auth.Identity) answer {
	if !strings.EqualFold(p.host, s.cfg.Domain) {
		// Say so: a PBX whose domain differs from --domain is the usual cause.
		return answer{code: 403, reason: "Forbidden - Request-URI domain " + sanitizeReason(p.host) + " is not this hub's domain " + s.cfg.Domain}
	}
	if !id.CanPublish(p.user, s.cfg.Domain) {
		return answer{code: 403, reason: "Forbidden - the token's publish claim does not include " + sanitizeReason(p.user)}
	}
	if p.badExpires {
		return answer{code: 400, reason: "Bad Request - invalid Expires"}
	}
	requested := p.requested
	if p.resource == "" {
		p.resource = siprule.AOR(p.user, s.cfg.Domain) // the host matched case-insensitively above
	}
	pr := compositor.PublishRequest{
		Resource:  p.resource,
		Body:      p.body,
		Publisher: id.Sub,
		Event:     p.event,
		IfMatch:   p.ifMatch,
	}
	// RFC 3903 §6 step 3, for the packages the compositor accepts (any
	// other is answered 489 by it, step 1).
	if pol, ok := s.publishExpiry[pr.Event]; ok {
		grant, ok := pol.Grant(requested)
		if !ok { // too brief, unless the PUBLISH ends state: the compositor reads the body
			grant, pr.EndingOnly = pol.GrantEnding(requested), true
		}
		pr.Expires = siprule.Seconds(grant)
	}
	if len(pr.Body) > 0 {
		pr.ContentType = p.contentType
	}
	start := time.Now()
	changes := len(pr.Body) > 0 || requested == 0 // a refresh changes no state
	if changes {
		s.metrics.publishStarted(pr.Resource, pr.Event, start)
	}
	result, err := s.comp.Publish(s.ctx, pr)
	if err != nil && changes {
		s.metrics.publishFailed(pr.Resource, pr.Event, start)
	}
	if err == nil {
		if s.storeFault.Load() != nil && s.storeFault.Swap(nil) != nil {
			s.log.Info("store writes again: ready") // the store writes again: ready
		}
		return answer{code: 200, reason: "OK", etag: result.ETag, expires: result.Expires}
	}
	var ce *compositor.Error // declared here: errors.As moves it to the heap
	switch {
	case errors.Is(err, compositor.ErrTooBrief):
		least := s.publishExpiry[pr.Event].MinExpires()
		return answer{code: 423, reason: "Interval Too Brief - at least " + strconv.Itoa(least) + " s for state that goes on", minExpires: least}
	case errors.As(err, &ce):
		if ce.StoreFault {
			s.noteStoreFault(pr.Resource, ce)
		}
		if ce.Limit != "" {
			s.metrics.limitHit(ce.Limit)
		}
		return answer{code: ce.Code, reason: ce.Reason, accept: ce.Accept, allowEvts: ce.AllowEvents, retryAfter: ce.RetryAfter}
	default:
		s.log.Error("publish", "resource", pr.Resource, "err", err)
		return answer{code: 500, reason: "Server Internal Error"}
	}
}

// noteStoreFault records a failed store write for /readyz and logs it: at
// once when the store was healthy, then at most every storeFaultLogEvery
// while it keeps failing.
func (s *Server) noteStoreFault(resource string, err error) {
	now := time.Now()
	prev := s.storeFault.Swap(&storeFault{err: err, at: now})
	if prev == nil || now.Sub(s.storeFaultLogged.Load().(time.Time)) >= storeFaultLogEvery {
		s.storeFaultLogged.Store(now)
		s.log.Error("store write failed: /readyz reports not ready until a write succeeds", "resource", resource, "err", err)
	}
}

const storeFaultLogEvery = 10 * time.Second

// storeFault is the last failed store write; /readyz reports it until a
// write succeeds again (a full disk or a read-only file cannot be seen by a
// read-only probe).
type storeFault struct {
	err error
	at  time.Time
}

// sanitizeReason keeps request text quoted in a reason phrase short and
// printable (RFC 3261 §25.1 reason-phrase: no CR or LF).
func sanitizeReason(v string) string {
	if len(v) > 64 {
		v = v[:64] + "…"
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return '?'
		}
		return r
	}, v)
}

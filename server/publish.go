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

// handlePublish answers a PUBLISH that came over a WebSocket flow.
func (s *Server) handlePublish(fl *flow.Flow, req *sip.Request, id *auth.Identity) {
	s.send(fl, req, s.publish(req, id))
}

// publish maps a PUBLISH to the compositor and its answer back to SIP
// (RFC 3903 §6: the expiry grant is the shared siprule.ExpiryPolicy's, every
// other step the compositor's). Both the WebSocket front end and the
// plain-SIP listener for PBXs use it.
func (s *Server) publish(req *sip.Request, id *auth.Identity) *sip.Response {
	uri := req.Recipient
	if !strings.EqualFold(uri.Host, s.cfg.Domain) {
		// Say so: a PBX whose domain differs from --domain is the usual cause.
		return sip.NewResponseFromRequest(req, 403, "Forbidden - Request-URI domain "+sanitizeReason(uri.Host)+" is not this hub's domain "+s.cfg.Domain, nil)
	}
	if !id.CanPublish(uri.User, s.cfg.Domain) {
		return sip.NewResponseFromRequest(req, 403, "Forbidden - the token's publish claim does not include "+sanitizeReason(uri.User), nil)
	}
	requested, err := siprule.Expires(req)
	if err != nil {
		return sip.NewResponseFromRequest(req, 400, "Bad Request - invalid Expires", nil)
	}
	pr := compositor.PublishRequest{
		Resource:  siprule.AOR(uri.User, s.cfg.Domain), // the host matched case-insensitively above
		Body:      req.Body(),
		Publisher: id.Sub,
	}
	pr.Event, _, _ = siprule.Event(req)
	// RFC 3903 §6 step 3, for the packages the compositor accepts (any
	// other is answered 489 by it, step 1).
	if pol, ok := s.publishExpiry[pr.Event]; ok {
		grant, ok := pol.Grant(requested)
		if !ok { // too brief, unless the PUBLISH ends state: the compositor reads the body
			grant, pr.EndingOnly = pol.GrantEnding(requested), true
		}
		pr.Expires = siprule.Seconds(grant)
	}
	for _, h := range req.Headers() {
		if !siprule.HeaderIs(h, "SIP-If-Match") {
			continue
		}
		for _, v := range strings.Split(h.Value(), ",") {
			pr.IfMatch = append(pr.IfMatch, strings.TrimSpace(v))
		}
	}
	if ct := req.ContentType(); ct != nil && len(pr.Body) > 0 {
		mt, _, _ := strings.Cut(ct.Value(), ";")
		pr.ContentType = strings.ToLower(strings.TrimSpace(mt))
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
	var ce *compositor.Error
	switch {
	case errors.Is(err, compositor.ErrTooBrief):
		res := s.publishExpiry[pr.Event].TooBrief(req)
		res.Reason = "Interval Too Brief - at least " + res.GetHeader("Min-Expires").Value() + " s for state that goes on"
		return res
	case errors.As(err, &ce):
		if ce.StoreFault {
			s.noteStoreFault(pr.Resource, ce)
		}
		if ce.Limit != "" {
			s.metrics.limitHit(ce.Limit)
		}
		res := sip.NewResponseFromRequest(req, ce.Code, ce.Reason, nil)
		if ce.Accept != "" {
			res.AppendHeader(sip.NewHeader("Accept", ce.Accept))
		}
		if ce.AllowEvents != "" {
			res.AppendHeader(sip.NewHeader("Allow-Events", ce.AllowEvents))
		}
		if ce.RetryAfter > 0 {
			res.AppendHeader(sip.NewHeader("Retry-After", strconv.Itoa(ce.RetryAfter)))
		}
		return res
	case err != nil:
		s.log.Error("publish", "resource", pr.Resource, "err", err)
		return sip.NewResponseFromRequest(req, 500, "Server Internal Error", nil)
	default:
		if s.storeFault.Load() != nil && s.storeFault.Swap(nil) != nil {
			s.log.Info("store writes again: ready") // the store writes again: ready
		}
		res := sip.NewResponseFromRequest(req, 200, "OK", nil)
		if result.ETag != "" {
			res.AppendHeader(sip.NewHeader("SIP-ETag", result.ETag))
		}
		res.AppendHeader(sip.NewHeader("Expires", strconv.Itoa(result.Expires)))
		return res
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

package server

import (
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"

	"github.com/emiago/sipgo/sip"
	"github.com/presencehub/presencehub/internal/siprule"
	"github.com/presencehub/presencehub/server/auth"
	"github.com/presencehub/presencehub/server/feed"
)

// serveFeed is GET /api/feed, the state feed as Server-Sent Events
// (docs/protocol.md, "State feed"): parsing, the token, authorization and
// limits here; the stream is package feed's.
func (s *Server) serveFeed(w http.ResponseWriter, r *http.Request) {
	if !s.feedOrigin(w, r) {
		apiError(w, http.StatusForbidden, "origin not allowed")
		return
	}
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		apiError(w, http.StatusMethodNotAllowed, "method "+r.Method+" not allowed here")
		return
	}
	tok := upgradeToken(r)
	if tok == "" {
		w.Header().Set("WWW-Authenticate", `Bearer realm="`+s.cfg.Domain+`"`)
		apiError(w, http.StatusUnauthorized, "token required (access_token or Authorization: Bearer)")
		return
	}
	id, err := s.cfg.Verifier.Verify(tok)
	if err != nil {
		s.metrics.authFailure(err)
		w.Header().Set("WWW-Authenticate", `Bearer realm="`+s.cfg.Domain+`", error="invalid_token"`)
		apiError(w, http.StatusUnauthorized, "invalid token")
		return
	}
	req, code, msg := s.feedRequest(r, id)
	if code != 0 {
		apiError(w, code, msg)
		return
	}
	n := 0
	for _, r := range req.Resources {
		if !r.Rejected {
			n++
		}
	}
	if n > s.feedMaxPerConn {
		apiError(w, http.StatusBadRequest, "too many resources: at most "+strconv.Itoa(s.feedMaxPerConn)+" per feed")
		return
	}
	ip := remoteIP(r.RemoteAddr)
	if !s.takeIPSlot(ip) {
		s.metrics.limitHit("connections_per_ip")
		w.Header().Set("Retry-After", "10")
		apiError(w, http.StatusServiceUnavailable, "too many connections from your address")
		return
	}
	defer s.releaseIPSlot(ip)
	s.mu.Lock()
	switch {
	case s.draining:
		s.mu.Unlock()
		apiError(w, http.StatusServiceUnavailable, "shutting down")
		return
	case s.feedWatched[id.Sub]+n > s.feedMaxPerUser:
		s.mu.Unlock()
		s.metrics.limitHit("feed_resources_per_user")
		w.Header().Set("Retry-After", "60")
		apiError(w, http.StatusServiceUnavailable, "too many watched resources for "+id.Sub+": at most "+strconv.Itoa(s.feedMaxPerUser))
		return
	}
	s.feedWatched[id.Sub] += n
	s.wg.Add(1)
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		if s.feedWatched[id.Sub] -= n; s.feedWatched[id.Sub] <= 0 {
			delete(s.feedWatched, id.Sub)
		}
		s.mu.Unlock()
		s.wg.Done()
	}()
	req.Expires = id.Expires
	req.Done = s.feedStop
	req.LastEventID = r.Header.Get("Last-Event-ID")
	if req.LastEventID == "" {
		req.LastEventID = r.URL.Query().Get("lastEventId") // a client that cannot set headers
	}
	if err := s.feed.Serve(r.Context(), w, req); err != nil {
		s.log.Debug("feed stream ended", "remote", r.RemoteAddr, "sub", id.Sub, "err", err)
	}
}

// feedRequest reads ?ext=, ?list= and ?event= into a feed request; a
// refusal is an HTTP status and message.
func (s *Server) feedRequest(r *http.Request, id *auth.Identity) (feed.Request, int, string) {
	var req feed.Request
	q := r.URL.Query()
	for _, ev := range splitComma(q.Get("event")) {
		switch ev {
		case "dialog":
			req.Packages |= feed.Dialog
		case "presence":
			req.Packages |= feed.Presence
		case "message-summary":
			req.Packages |= feed.MessageSummary
		default:
			return req, http.StatusBadRequest, "unknown event package " + ev + " (dialog, presence, message-summary)"
		}
	}
	seen := map[string]bool{}
	for _, user := range splitComma(q.Get("ext")) {
		if !validUser(user) {
			return req, http.StatusBadRequest, "invalid extension " + user
		}
		if seen[siprule.AOR(user, s.cfg.Domain)] {
			continue
		}
		seen[siprule.AOR(user, s.cfg.Domain)] = true
		if !id.CanSubscribe(user, s.cfg.Domain) {
			return req, http.StatusForbidden, "token may not watch " + user
		}
		req.Resources = append(req.Resources, feed.Resource{AOR: siprule.AOR(user, s.cfg.Domain), Ext: user})
	}
	if name := q.Get("list"); q.Has("list") {
		members, ok := s.listMembers(name)
		if !ok {
			return req, http.StatusNotFound, "no stored list " + name
		}
		// A member the token may not watch is in the stream as "rejected"
		// (as in a list subscription's RLMI), not a refusal of the request:
		// the list is the administrator's, the token the user's.
		for _, m := range members {
			user, host, valid := splitListMember(m, s.cfg.Domain)
			aor := m
			if valid {
				aor = siprule.AOR(user, host)
			}
			if seen[aor] {
				continue
			}
			seen[aor] = true
			req.Resources = append(req.Resources, feed.Resource{AOR: aor, Ext: user,
				Rejected: !valid || !id.CanSubscribe(user, host)})
		}
	}
	if len(req.Resources) == 0 {
		return req, http.StatusBadRequest, "name what to watch: ?ext=1001,1002 or ?list=<stored list>"
	}
	return req, 0, ""
}

// feedOrigin allows a request without Origin, from the hub's own origin or
// from an origin --origins allows (as for /ws), and then answers with the
// CORS header that lets a page of that origin read the stream
// (EventSource without credentials). It reports false for another origin.
func (s *Server) feedOrigin(w http.ResponseWriter, r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	w.Header().Add("Vary", "Origin")
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return false
	}
	ok := strings.EqualFold(u.Host, r.Host)
	for _, p := range s.cfg.OriginPatterns {
		if m, _ := path.Match(strings.ToLower(p), strings.ToLower(u.Host)); m {
			ok = true
		}
	}
	if ok {
		w.Header().Set("Access-Control-Allow-Origin", origin)
	}
	return ok
}

func splitComma(v string) []string {
	var out []string
	for _, p := range strings.Split(v, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// validUser accepts a SIP user part of unreserved characters (RFC 3261
// §25.1, without escapes), at most 64 of them.
func validUser(u string) bool {
	if u == "" || len(u) > 64 {
		return false
	}
	for i := 0; i < len(u); i++ {
		c := u[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte("-_.!~*'()&=+$;?/", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// listMembers returns the members of the stored list name.
func (s *Server) listMembers(name string) ([]string, bool) {
	for _, l := range s.notifier.Lists() {
		if l.Name == name {
			return l.Members, true
		}
	}
	return nil, false
}

// splitListMember reads a list member as the notifier does: a user part of
// the domain, or a sip/sips URI.
func splitListMember(m, domain string) (user, host string, ok bool) {
	if !strings.Contains(m, ":") {
		return m, domain, validUser(m)
	}
	var u sip.Uri
	if err := sip.ParseUri(m, &u); err != nil || (u.Scheme != "sip" && u.Scheme != "sips") || u.User == "" {
		return "", "", false
	}
	return u.User, u.Host, true
}

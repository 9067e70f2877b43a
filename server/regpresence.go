package server

import (
	"context"
	"errors"
	"time"

	"github.com/presencehub/presencehub/compositor"
	"github.com/presencehub/presencehub/compositor/pidf"
)

// regPublisher prefixes the Publisher of the presence the hub derives from
// REGISTER; the AOR follows, so per-publisher limits count each user apart.
// A hub with a NodeID writes "presencehub-registrar/<node>:<AOR>": hubs
// sharing a store each own the registration presence of the bindings on
// their sockets.
const regPublisher = "presencehub-registrar:"

// regPrefix is the Publisher prefix of this hub's registration presence.
func regPrefix(nodeID string) string {
	if nodeID == "" {
		return regPublisher
	}
	return "presencehub-registrar/" + nodeID + ":"
}

// syncRegPresence makes a registered AOR's presence "open" (RFC 3856 §6.1:
// a presence agent may use registrations as a source of state), so a
// softphone that is online shows an idle lamp rather than an offline one. It
// is an ordinary publication of the hub in the compositor, composed with
// what the phone or PBX publish themselves, refreshed with the binding and
// removed with the last one.
func (s *Server) syncRegPresence(aor string) {
	bindings := s.registrar.Bindings(aor)
	var until time.Time
	for _, b := range bindings {
		if b.Expires.After(until) {
			until = b.Expires
		}
	}
	s.regMu.Lock()
	defer s.regMu.Unlock()
	etag := s.regETags[aor]
	ctx, cancel := context.WithTimeout(s.ctx, 5*time.Second)
	defer cancel()
	if len(bindings) == 0 {
		if etag != "" {
			delete(s.regETags, aor)
			delete(s.regUntil, aor)
			_, _ = s.comp.Publish(ctx, compositor.PublishRequest{Resource: aor, Event: compositor.EventPresence, IfMatch: []string{etag}, Expires: 0, Publisher: s.regPrefix + aor})
		}
		return
	}
	// The publication outlives the binding (twice its time, plus the
	// registrar's grace), so a REGISTER refresh rarely needs a store write.
	if etag != "" && s.regUntil[aor].After(until.Add(30*time.Second)) {
		return
	}
	expires := max(2*int(time.Until(until).Seconds())+30, 60)
	for {
		req := compositor.PublishRequest{Resource: aor, Event: compositor.EventPresence, Expires: expires, Publisher: s.regPrefix + aor}
		if etag != "" {
			req.IfMatch = []string{etag}
		} else {
			doc := pidf.Document{Entity: aor, Tuples: []pidf.Tuple{{ID: "registered", Basic: pidf.Open}}}
			req.ContentType, req.Body = compositor.ContentTypePIDF, doc.AppendXML(nil)
		}
		res, err := s.comp.Publish(ctx, req)
		var ce *compositor.Error
		if errors.As(err, &ce) && ce.Code == 412 && etag != "" {
			etag = "" // expired or removed meanwhile: publish afresh
			continue
		}
		if err != nil {
			delete(s.regETags, aor)
			delete(s.regUntil, aor)
			s.log.Warn("registration presence", "aor", aor, "err", err)
			return
		}
		s.regETags[aor] = res.ETag
		s.regUntil[aor] = time.Now().Add(time.Duration(res.Expires) * time.Second)
		return
	}
}

// clearRegPresence removes registration presence left by a previous run of
// this node: registrations do not survive a restart, so neither may what
// they implied. Other nodes' registration presence (a shared store) stays;
// that of a node that died expires with its publications.
// One store operation, free when there is none (the store's publisher
// counts say so).
func (s *Server) clearRegPresence(ctx context.Context) error {
	_, err := s.comp.RemovePublisherPrefix(ctx, s.regPrefix)
	return err
}

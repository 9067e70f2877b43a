package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/presencehub/presencehub/internal/siprule"
	"github.com/presencehub/presencehub/server/auth"
)

// pbxSub is the identity of a PUBLISH accepted from a trusted address.
const pbxSub = "pbx"

// ServeSIP serves plain SIP (RFC 3261 over UDP and/or TCP; either may be
// nil) for PBXs, which publish their extensions' state over UDP/TCP rather
// than WebSocket (Asterisk outbound-publish, Kamailio pua_dialoginfo,
// FreeSWITCH). It uses sipgo's own transport and transaction layer
// and routes requests into the same PUBLISH path as the WebSocket side.
// Accepted: PUBLISH from a source in Config.SIPTrusted, or with a valid
// "Authorization: Bearer" (RFC 8898); OPTIONS (PBX qualify). Everything else
// gets 405. It returns when ctx ends, after closing the listeners.
func (s *Server) ServeSIP(ctx context.Context, udp net.PacketConn, tcp net.Listener) error {
	ua, err := sipgo.NewUA(sipgo.WithUserAgent(siprule.Product), sipgo.WithUserAgentHostname(s.cfg.Domain))
	if err != nil {
		return fmt.Errorf("server: sip user agent: %w", err)
	}
	defer ua.Close()
	srv, err := sipgo.NewServer(ua, sipgo.WithServerLogger(s.log))
	if err != nil {
		return fmt.Errorf("server: sip server: %w", err)
	}
	srv.OnPublish(func(req *sip.Request, tx sip.ServerTransaction) {
		res := s.pbxPublish(req)
		s.metrics.response("PUBLISH", res.StatusCode)
		s.logPlainSIP(req, res)
		_ = tx.Respond(res)
	})
	srv.OnOptions(func(req *sip.Request, tx sip.ServerTransaction) {
		res := sip.NewResponseFromRequest(req, 200, "OK", nil)
		s.capabilities(res)
		s.logPlainSIP(req, res)
		_ = tx.Respond(res)
	})
	srv.OnNoRoute(func(req *sip.Request, tx sip.ServerTransaction) {
		if req.IsAck() {
			return
		}
		res := sip.NewResponseFromRequest(req, 405, "Method Not Allowed - this listener takes PUBLISH from PBXs", nil)
		res.AppendHeader(sip.NewHeader("Allow", "PUBLISH, OPTIONS"))
		s.logPlainSIP(req, res)
		_ = tx.Respond(res)
	})

	errc := make(chan error, 2)
	n := 0
	if udp != nil {
		n++
		go func() { errc <- srv.ServeUDP(udp) }()
	}
	if tcp != nil {
		n++
		go func() { errc <- srv.ServeTCP(tcp) }()
	}
	if n == 0 {
		return errors.New("server: ServeSIP needs a UDP or TCP listener")
	}
	var first error
	select {
	case <-ctx.Done():
	case first = <-errc:
		n--
	}
	if udp != nil {
		udp.Close()
	}
	if tcp != nil {
		tcp.Close()
	}
	srv.Close()
	for ; n > 0; n-- {
		<-errc
	}
	if first != nil && !errors.Is(first, net.ErrClosed) {
		return fmt.Errorf("server: sip listener: %w", first)
	}
	return nil
}

// pbxPublish authenticates a plain-SIP PUBLISH and processes it.
func (s *Server) pbxPublish(req *sip.Request) *sip.Response {
	id, res := s.requestBearer(req)
	if res != nil {
		return res
	}
	if id == nil && s.trusted(req.Source()) {
		id = auth.Trusted(pbxSub, s.cfg.Domain)
	}
	if id == nil {
		return s.unauthorized(req, auth.ErrNoToken, "Unauthorized - untrusted address and no token")
	}
	if !answerable(req) {
		return sip.NewResponseFromRequest(req, 400, "Bad Request - malformed headers", nil)
	}
	if res := copiedRefusal(req); res != nil {
		return res
	}
	return s.publish(sipPublish(req), id).response(req)
}

func (s *Server) trusted(source string) bool {
	host := source
	if h, _, err := net.SplitHostPort(source); err == nil {
		host = h
	}
	ip, err := netip.ParseAddr(strings.Trim(host, "[]"))
	if err != nil {
		return false
	}
	ip = ip.Unmap()
	for _, p := range s.cfg.SIPTrusted {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

package server

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/coder/websocket"
	"github.com/presencehub/presencehub/server/auth"
	"github.com/presencehub/presencehub/server/flow"
	"github.com/presencehub/presencehub/wsproto"
)

// upgradeToken returns the token presented at the WebSocket upgrade: the
// access_token query parameter (browsers cannot set headers) or an
// Authorization: Bearer header (other clients): docs/protocol.md, "Identity".
func upgradeToken(r *http.Request) string {
	if t := r.URL.Query().Get("access_token"); t != "" {
		return t
	}
	return bearer(r.Header.Get("Authorization"))
}

func bearer(h string) string {
	if len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		return strings.TrimSpace(h[7:])
	}
	return ""
}

// serveWS accepts one SIP-over-WebSocket connection and hands it to
// serveConn. The connection outlives this handler: once it returns, net/http
// frees its per-request buffers and this goroutine's stack, about 10 KiB per
// idle socket.
func (s *Server) serveWS(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	draining := s.draining
	s.mu.Unlock()
	if draining {
		http.Error(w, "shutting down", http.StatusServiceUnavailable)
		return
	}
	ip := remoteIP(r.RemoteAddr)
	if !s.takeIPSlot(ip) {
		s.metrics.limitHit("connections_per_ip")
		w.Header().Set("Retry-After", "10")
		http.Error(w, "too many connections from your address", http.StatusServiceUnavailable)
		return
	}
	slotHeld := true // until serveConn owns it
	defer func() {
		if slotHeld {
			s.releaseIPSlot(ip)
		}
	}()
	var id *auth.Identity
	if tok := upgradeToken(r); tok != "" {
		var err error
		if id, err = s.cfg.Verifier.Verify(tok); err != nil {
			s.metrics.authFailure(err)
			w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
			http.Error(w, "invalid token", http.StatusUnauthorized)
			return
		}
	}
	conn, err := wsproto.Accept(w, r, s.wsOpts)
	if err != nil {
		s.log.Debug("websocket upgrade refused", "remote", r.RemoteAddr, "err", err)
		return
	}
	tc := s.tap(conn)
	fl := flow.New(tc, id)
	tc.flow = fl.String()
	if s.log.Enabled(r.Context(), slog.LevelDebug) {
		sub := ""
		if id != nil {
			sub = id.Sub
		}
		s.log.Debug("websocket connected", "flow", tc.flow, "remote", conn.RemoteIP(), "url", redactURL(r.URL), "sub", sub)
	}
	s.mu.Lock()
	if s.draining {
		s.mu.Unlock()
		conn.Close(websocket.StatusGoingAway, "server shutting down")
		return
	}
	s.conns[conn] = fl
	s.wg.Add(1)
	s.mu.Unlock()
	slotHeld = false
	go s.serveConn(conn, tc, fl, id, ip)
}

// serveConn serves one connection until it closes.
func (s *Server) serveConn(conn *wsproto.Conn, tc *tappedConn, fl *flow.Flow, id *auth.Identity, ip string) {
	defer s.releaseIPSlot(ip)
	defer s.wg.Done()
	s.metrics.connOpened(fl, conn)
	var unauth *time.Timer
	if id == nil {
		// A connection must prove who it is soon (Config.UnauthTimeout).
		unauth = time.AfterFunc(s.cfg.UnauthTimeout, func() {
			if fl.Identity() == nil {
				s.metrics.authFailure(auth.ErrNoToken)
				conn.Close(websocket.StatusPolicyViolation, "no valid token")
			}
		})
	}
	lim := newLimiter(s.cfg.RequestsPerSecond, s.cfg.PublisherRequestsPerSecond, s.cfg.PublishesInFlight)
	// Shutdown and Close close every connection themselves (s.conns), so
	// Serve gets a context that never ends: watching the server's would
	// cost every idle connection a registration (~400 bytes).
	err := conn.Serve(context.WithoutCancel(s.ctx), func(msg []byte) {
		s.traceMessage("in", tc.flow, msg)
		s.handleMessage(fl, lim, msg)
	})
	if unauth != nil {
		unauth.Stop()
	}
	if lim.lanes != nil {
		lim.lanes.wait() // the PUBLISHes read are answered (or dropped with the socket)
	}
	fl.Close()
	// Not s.ctx: a hub shutting down still removes its bindings from a
	// shared store.
	dctx, cancel := context.WithTimeout(context.WithoutCancel(s.ctx), registrarTimeout)
	for _, aor := range s.registrar.DropFlow(dctx, fl.ID()) {
		s.syncRegPresence(aor)
	}
	cancel()
	s.mu.Lock()
	delete(s.conns, conn)
	s.mu.Unlock()
	s.metrics.connClosed(fl, err)
	s.log.Debug("connection closed", "flow", fl.String(), "remote", conn.RemoteIP(), "err", err)
}

func remoteIP(addr string) string {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	return host
}

func (s *Server) takeIPSlot(ip string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.perIP[ip] >= s.cfg.MaxConnsPerIP {
		return false
	}
	s.perIP[ip]++
	return true
}

func (s *Server) releaseIPSlot(ip string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.perIP[ip]--; s.perIP[ip] <= 0 {
		delete(s.perIP, ip)
	}
}

// limiter is a token bucket: RequestsPerSecond with a burst of four
// seconds' worth, or PublisherRequestsPerSecond while the connection's
// identity publishes for others.
type limiter struct {
	rate, pubRate float64
	tokens        float64
	last          time.Time
	// inFlight bounds the PUBLISHes of this connection read and not yet
	// answered; lanes runs them (lanes.go), nil until the first. With 1
	// they run in order on the reader.
	inFlight int
	lanes    *lanes
}

func newLimiter(perSecond, publisherPerSecond, publishesInFlight int) *limiter {
	r, pr := float64(perSecond), float64(max(publisherPerSecond, perSecond))
	// Full at the higher rate: allow lowers the balance to the burst of the
	// rate that applies.
	return &limiter{rate: r, pubRate: pr, tokens: 4 * pr, last: time.Now(), inFlight: max(publishesInFlight, 1)}
}

// allow takes a request's token, at the publisher rate when publisher is
// set. It is called from the connection's read goroutine only.
func (l *limiter) allow(publisher bool) bool {
	rate := l.rate
	if publisher {
		rate = l.pubRate
	}
	now := time.Now()
	l.tokens += now.Sub(l.last).Seconds() * rate
	l.last = now
	if burst := 4 * rate; l.tokens > burst {
		l.tokens = burst
	}
	if l.tokens < 1 {
		return false
	}
	l.tokens--
	return true
}

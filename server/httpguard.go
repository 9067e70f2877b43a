package server

import (
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// HTTPGuardConfig bounds what one HTTP client can hold of the listener.
// Zero fields take the defaults documented on each.
type HTTPGuardConfig struct {
	// MaxConnsPerIP bounds the open HTTP connections (not yet upgraded to
	// WebSocket: those have Config.MaxConnsPerIP of their own) from one
	// address; a connection beyond it is closed at once. Default 256.
	MaxConnsPerIP int
	// ReadTimeout bounds reading one request's body and writing its
	// response (not WebSocket upgrades); default 30 s.
	ReadTimeout time.Duration
	// IdleTimeout closes a keep-alive connection that sends no next
	// request; default 60 s.
	IdleTimeout time.Duration
	// Exempt are addresses not bounded per IP (trusted reverse proxies,
	// which carry many clients); may be nil.
	Exempt func(netip.Addr) bool
	// LimitHit is told of each connection closed for MaxConnsPerIP
	// (metrics); may be nil.
	LimitHit func(limit string)
	Logger   *slog.Logger
}

// HTTPGuard applies HTTPGuardConfig to an http.Server: without it a
// keep-alive connection or a request body trickled at a byte a second is
// held for ever (only ReadHeaderTimeout bounds anything), and a few hundred
// of them exhaust the process's file descriptors.
type HTTPGuard struct {
	cfg   HTTPGuardConfig
	mu    sync.Mutex
	perIP map[string]int
	conns map[net.Conn]string // connections holding a slot, by address

	shed     atomic.Int64 // connections closed since the last log line
	lastLog  atomic.Int64 // unix nanoseconds of the last log line
	logEvery time.Duration
}

// NewHTTPGuard returns a guard for cfg.
func NewHTTPGuard(cfg HTTPGuardConfig) *HTTPGuard {
	if cfg.MaxConnsPerIP <= 0 {
		cfg.MaxConnsPerIP = 256
	}
	if cfg.ReadTimeout <= 0 {
		cfg.ReadTimeout = 30 * time.Second
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = 60 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.LimitHit == nil {
		cfg.LimitHit = func(string) {}
	}
	return &HTTPGuard{cfg: cfg, perIP: map[string]int{}, conns: map[net.Conn]string{}, logEvery: 10 * time.Second}
}

// Apply sets hs's idle timeout, a read timeout (ReadHeaderTimeout, when
// unset, and every non-upgrade request's body and response), and the per
// address bound. Call it before hs serves.
func (g *HTTPGuard) Apply(hs *http.Server) {
	if hs.ReadHeaderTimeout == 0 {
		hs.ReadHeaderTimeout = 10 * time.Second
	}
	hs.IdleTimeout = g.cfg.IdleTimeout
	hs.ConnState = g.connState
	next := hs.Handler
	hs.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		if r.Header.Get("Upgrade") != "" {
			// A WebSocket lives on: no deadline left by an earlier request
			// on this connection.
			_ = rc.SetReadDeadline(time.Time{})
			_ = rc.SetWriteDeadline(time.Time{})
		} else {
			d := time.Now().Add(g.cfg.ReadTimeout)
			_ = rc.SetReadDeadline(d)
			_ = rc.SetWriteDeadline(d)
		}
		next.ServeHTTP(w, r)
	})
}

func (g *HTTPGuard) connState(c net.Conn, st http.ConnState) {
	switch st {
	case http.StateNew:
		ip := remoteIP(c.RemoteAddr().String())
		if a, err := netip.ParseAddr(ip); err == nil && g.cfg.Exempt != nil && g.cfg.Exempt(a.Unmap()) {
			return
		}
		g.mu.Lock()
		over := g.perIP[ip] >= g.cfg.MaxConnsPerIP
		if !over {
			g.perIP[ip]++
			g.conns[c] = ip
		}
		g.mu.Unlock()
		if over {
			// Counted and logged before the close, so a client that saw
			// its connection closed finds it in the metrics.
			g.cfg.LimitHit("http_connections_per_ip")
			g.logShed(ip)
			c.Close()
		}
	case http.StateHijacked, http.StateClosed:
		g.mu.Lock()
		if ip, ok := g.conns[c]; ok {
			delete(g.conns, c)
			if g.perIP[ip]--; g.perIP[ip] <= 0 {
				delete(g.perIP, ip)
			}
		}
		g.mu.Unlock()
	}
}

// logShed logs closed connections: at once, then at most every logEvery
// with how many were closed meanwhile.
func (g *HTTPGuard) logShed(ip string) {
	n := g.shed.Add(1)
	now := time.Now().UnixNano()
	last := g.lastLog.Load()
	if now-last < int64(g.logEvery) || !g.lastLog.CompareAndSwap(last, now) {
		return
	}
	g.shed.Add(-n)
	g.cfg.Logger.Warn("HTTP connections shed: too many open from one address", "remote", ip,
		"limit", g.cfg.MaxConnsPerIP, "shed", n)
}

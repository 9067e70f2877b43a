package server

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/presencehub/presencehub/internal/siprule"
)

// Refusals logged at info per refusalWindow; the rest are counted and the
// count is logged when the next window opens (a misconfigured PBX sends a
// refused PUBLISH per call and must not flood the log).
const (
	refusalBurst  = 20
	refusalWindow = 10 * time.Second
)

// refusalLog rate-limits the info lines for refused plain-SIP requests.
type refusalLog struct {
	mu         sync.Mutex
	start      time.Time
	logged     int
	suppressed int
}

// allow reports whether a refusal may be logged now, and how many were
// left out in the window that just ended (to be logged first).
func (r *refusalLog) allow(now time.Time) (ok bool, skipped int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if now.Sub(r.start) >= refusalWindow {
		skipped = r.suppressed
		r.start, r.logged, r.suppressed = now, 0, 0
	}
	if r.logged >= refusalBurst {
		r.suppressed++
		return false, skipped
	}
	r.logged++
	return true, skipped
}

// logPlainSIP logs a plain-SIP request and the hub's answer: every one at
// debug (method, source, transport, AOR, status), every refusal (status
// 300 and above) at info with its reason phrase, rate-limited. Headers and
// bodies are never logged (a Bearer token may be among them).
func (s *Server) logPlainSIP(req *sip.Request, res *sip.Response) {
	ctx := context.Background()
	attrs := []any{
		"method", string(req.Method),
		"source", req.Source(),
		"transport", req.Transport(),
		"aor", siprule.AOR(req.Recipient.User, req.Recipient.Host),
		"status", res.StatusCode,
	}
	if callID := req.CallID(); callID != nil {
		attrs = append(attrs, "call_id", callID.Value())
	}
	if res.StatusCode < 300 {
		if s.log.Enabled(ctx, slog.LevelDebug) {
			s.log.Debug("plain sip", attrs...)
		}
		return
	}
	ok, skipped := s.refusals.allow(time.Now())
	if skipped > 0 {
		s.log.Info("plain sip refusals not logged", "count", skipped, "window", refusalWindow.String())
	}
	if ok {
		s.log.Info("plain sip refused", append(attrs, "reason", res.Reason)...)
	} else if s.log.Enabled(ctx, slog.LevelDebug) {
		s.log.Debug("plain sip refused", append(attrs, "reason", res.Reason)...)
	}
}

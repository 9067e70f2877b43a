package server

import (
	"bytes"
	"context"
	"log/slog"
	"net/url"
	"regexp"

	"github.com/presencehub/presencehub/internal/siprule"
	"github.com/presencehub/presencehub/wsproto"
)

// tappedConn is a client connection whose outgoing messages are logged when
// debug logging is on.
type tappedConn struct {
	*wsproto.Conn
	s    *Server
	flow string // set before Serve starts
}

func (s *Server) tap(conn *wsproto.Conn) *tappedConn { return &tappedConn{Conn: conn, s: s} }

func (c *tappedConn) Send(msg []byte) error {
	c.s.traceMessage("out", c.flow, msg)
	return c.Conn.Send(msg)
}

// SendRecycle is Send for a message whose memory the sender reuses once
// written (flow.Recycler).
func (c *tappedConn) SendRecycle(msg []byte, recycle func([]byte)) error {
	c.s.traceMessage("out", c.flow, msg)
	return c.Conn.SendRecycle(msg, recycle)
}

// traceMessage is the request-level debug log (switched on at run time,
// SIGUSR1): one line per SIP message with its first line, Call-ID and CSeq.
// Headers and bodies are never logged: they may carry a Bearer token.
func (s *Server) traceMessage(dir, flow string, msg []byte) {
	if !s.log.Enabled(context.Background(), slog.LevelDebug) {
		return
	}
	first, _, _ := bytes.Cut(msg, []byte("\r\n"))
	var callID, cseq []byte
	for h := siprule.ScanHeaders(msg); h.Next() && (callID == nil || cseq == nil); {
		switch {
		case callID == nil && h.Is("call-id", 'i'):
			callID = h.Value()
		case cseq == nil && h.Is("cseq", 0):
			cseq = h.Value()
		}
	}
	if len(first) > 200 {
		first = first[:200]
	}
	s.log.Debug("sip "+dir, "flow", flow, "line", redactSecrets(string(first)), "call_id", string(callID), "cseq", string(cseq))
}

// secretParam matches a token carried as a URI or query parameter.
var secretParam = regexp.MustCompile(`(?i)((?:access_)?token=)[^&;\s>"]+`)

// redactSecrets masks token values in text that may hold a URL or URI.
func redactSecrets(s string) string { return secretParam.ReplaceAllString(s, "${1}REDACTED") }

// redactURL is u for logs, with access_token (and the console's token)
// masked: browsers put the token on the WebSocket URL.
func redactURL(u *url.URL) string {
	if u == nil {
		return ""
	}
	c := *u
	if q := c.Query(); q.Has("access_token") || q.Has("token") {
		for _, k := range []string{"access_token", "token"} {
			if q.Has(k) {
				q.Set(k, "REDACTED")
			}
		}
		c.RawQuery = q.Encode()
	}
	c.User = nil
	return c.String()
}

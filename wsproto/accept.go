package wsproto

import (
	"fmt"
	"net"
	"net/http"
	"strings"

	"github.com/coder/websocket"
)

// Subprotocol is the WebSocket subprotocol of SIP (RFC 7118 §4.1).
const Subprotocol = "sip"

// Accept refuses (HTTP 400, before upgrading) a WebSocket handshake that does not offer the
// subprotocol "sip", checks Origin against opts.OriginPatterns (403 when refused), upgrades
// and echoes "sip". On error it has already written the HTTP response.
//
// The request's context must not be used after Accept returns (the connection is hijacked);
// pass Serve a context of its own.
func Accept(w http.ResponseWriter, r *http.Request, opts Options) (*Conn, error) {
	// coder/websocket upgrades without a subprotocol when none of its list is offered, and
	// Chromium then drops the socket; RFC 7118 §4.1 needs "sip", so refuse before upgrading.
	// A request that is no WebSocket handshake at all gets coder/websocket's own answer (426).
	if isUpgrade(r) && !offersSIP(r.Header) {
		http.Error(w, `WebSocket subprotocol "sip" required (RFC 7118)`, http.StatusBadRequest)
		return nil, fmt.Errorf("wsproto: accept from %s: %w", r.RemoteAddr, ErrNoSubprotocol)
	}
	opts = opts.withDefaults()
	cw := &corkingWriter{ResponseWriter: w}
	ws, err := websocket.Accept(cw, r, &websocket.AcceptOptions{
		Subprotocols:    []string{Subprotocol},
		OriginPatterns:  opts.OriginPatterns,
		CompressionMode: opts.Compression,
	})
	if err != nil {
		return nil, fmt.Errorf("wsproto: accept from %s: %w", r.RemoteAddr, err)
	}
	c := newConn(ws, remoteIP(r.RemoteAddr), opts)
	c.cork = cw.cork
	// With compression negotiated (coder/websocket has answered the extension),
	// coder/websocket frames every message (it compresses); otherwise the writer does
	// (corkConn.writeFrames).
	c.raw = c.cork != nil && cw.Header().Get("Sec-WebSocket-Extensions") == ""
	return c, nil
}

func isUpgrade(r *http.Request) bool {
	return headerHasToken(r.Header, "Connection", "upgrade") && headerHasToken(r.Header, "Upgrade", "websocket")
}

func offersSIP(h http.Header) bool {
	return headerHasToken(h, "Sec-WebSocket-Protocol", Subprotocol)
}

// headerHasToken reports whether a comma-separated header holds token (case-insensitively,
// as coder/websocket matches subprotocols).
func headerHasToken(h http.Header, key, token string) bool {
	for _, v := range h.Values(key) {
		for t := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

// remoteIP is the host part of addr. X-Forwarded-For is deliberately not trusted: any client
// can set it.
func remoteIP(addr string) string {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	return host
}

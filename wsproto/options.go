package wsproto

import (
	"log/slog"
	"net/http"
	"time"

	"github.com/coder/websocket"
)

// Defaults used for zero Options fields.
const (
	DefaultMaxMessageSize = 64 << 10
	DefaultPingInterval   = 20 * time.Second
	DefaultWriteQueue     = 1024
	DefaultWriteTimeout   = 10 * time.Second
)

// Options configure a Conn. The zero value is usable: every zero field takes its default.
type Options struct {
	// OriginPatterns lists extra allowed Origin host patterns (coder/websocket syntax,
	// path.Match, e.g. "*.example.com" or "https://app.example.com"). nil allows only
	// same-origin browsers. Requests without an Origin header are always allowed.
	OriginPatterns []string
	// MaxMessageSize is the largest SIP message accepted (default 64 KiB); a bigger one
	// closes the connection with 1009.
	MaxMessageSize int64
	// PingInterval is the WebSocket ping period (default 20s); a peer that does not answer a
	// ping within PingInterval is closed. A negative value disables pings.
	PingInterval time.Duration
	// WriteQueue is the number of messages Send may queue (default 1024); when it is full the
	// connection is closed with 1008 "slow consumer".
	WriteQueue int
	// WriteTimeout bounds one write to the socket (default 10s); a write stuck longer closes
	// the connection.
	WriteTimeout time.Duration
	// Compression offers (Accept) or asks for (Dial) permessage-deflate
	// (RFC 7692); the zero value is off. Messages below 512 bytes are sent
	// uncompressed (coder/websocket's threshold for no context takeover).
	Compression websocket.CompressionMode
	// HTTPClient makes Dial's upgrade request (tests count bytes on the
	// wire with their own transport); nil: http.DefaultClient.
	HTTPClient *http.Client
	// Logger receives debug logs about connection ends; nil discards them.
	Logger *slog.Logger
}

func (o Options) withDefaults() Options {
	if o.MaxMessageSize <= 0 {
		o.MaxMessageSize = DefaultMaxMessageSize
	}
	if o.PingInterval == 0 {
		o.PingInterval = DefaultPingInterval
	}
	if o.WriteQueue <= 0 {
		o.WriteQueue = DefaultWriteQueue
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = DefaultWriteTimeout
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

package server

import (
	"log/slog"
	"net/netip"
	"time"

	"github.com/presencehub/presencehub/compositor/store"
	"github.com/presencehub/presencehub/internal/siprule"
	"github.com/presencehub/presencehub/server/auth"
	"github.com/presencehub/presencehub/server/registrar"
)

// Config is everything the hub needs; cmd/presencehub fills it from flags
// and PRESENCEHUB_* variables. Zero values take the defaults documented on
// each field.
type Config struct {
	Domain   string         // SIP domain of every AOR (required)
	Verifier *auth.Verifier // token verification (required)
	Store    store.Store    // publications; the hub owns it from New on and closes it
	// OriginPatterns allows browser Origins besides the hub's own.
	OriginPatterns []string
	MaxMessageSize int64         // default 64 KiB (close 1009 above)
	PingInterval   time.Duration // WebSocket ping period; default 20 s
	WriteQueue     int           // per-connection queued messages; default 1024
	// UnauthTimeout closes a connection that has presented no valid token
	// after this long; default 30 s.
	UnauthTimeout time.Duration
	// RequestsPerSecond limits requests per connection (burst 4×); default 200.
	RequestsPerSecond int
	// PublisherRequestsPerSecond is RequestsPerSecond for a connection
	// whose token may publish for others (publish ["*"] or a list naming
	// other users: a PBX or an integration publishing for many extensions
	// over one connection); default 20000.
	PublisherRequestsPerSecond int
	// MaxConnsPerIP limits open WebSocket connections from one address
	// (HTTP 503 above); default 256.
	MaxConnsPerIP int
	// MaxHeaders limits header fields per SIP message (400 above); default 64.
	MaxHeaders int
	// MaxHeaderLength limits the bytes of one header field's value (400
	// above); default 8192.
	MaxHeaderLength int
	// SIPTrusted are the source addresses whose plain-SIP PUBLISHes are
	// accepted without a token (a PBX: publish ["*"]); see ServeSIP.
	SIPTrusted []netip.Prefix
	// MaxSubsPerConn and MaxSubsPerUser limit subscriptions (503 above);
	// defaults 1000 and 5000.
	MaxSubsPerConn, MaxSubsPerUser int
	// PublishesInFlight is how many PUBLISHes of one connection are read
	// and not yet answered: those for one resource run in order, those for
	// different resources concurrently (they share the SQLite store's group
	// commits); the connection is not read while that many wait. 1 runs
	// them in order on the connection's goroutine (the in-memory store is
	// fastest that way). Default 32.
	PublishesInFlight int
	// MaxPubsPerUser limits the live publications of one token sub (503
	// above); default 20000 (a PBX publishes for every extension).
	MaxPubsPerUser int
	// MaxPubsPerResource and MaxDialogsPerResource bound the composed
	// view of one resource (503 and 413 above); defaults 100 and 1000.
	MaxPubsPerResource, MaxDialogsPerResource int
	// PublishExpiry and SubscribeExpiry are the expiry policies per event
	// package; missing packages and zero fields take DefaultPublishExpiry
	// and notifier.DefaultExpiry.
	PublishExpiry   map[string]siprule.ExpiryPolicy
	SubscribeExpiry map[string]siprule.ExpiryPolicy
	Register        registrar.Config
	RebindGrace     time.Duration // default 32 s
	// ListBatch is the batching window of resource-list subscriptions
	// (default 100 ms; negative: none); MaxListMembers limits a list's
	// members (default 1000).
	ListBatch      time.Duration
	MaxListMembers int
	// Compression offers permessage-deflate (RFC 7692) on /ws: "" or
	// "no-context-takeover" (default), "context-takeover", "off".
	Compression string
	// NodeID names this hub among several sharing one store (NATS): the
	// presence it derives from REGISTER is published as this node's, and
	// only this node's is cleared at start. "" for a hub on its own store.
	NodeID string
	TLS    bool // wss: Via transport WSS, Contact transport=wss
	// FeedReplay, FeedQueue and FeedKeepalive configure the state feed
	// (GET /api/feed): events kept for Last-Event-ID (default 4096), events
	// waiting per client before it gets a fresh snapshot instead (default
	// 256), and the keepalive comment period (default 15 s). Its limits are
	// MaxSubsPerConn resources per stream and MaxSubsPerUser resources per
	// token sub over its open streams, and MaxConnsPerIP (shared with /ws).
	FeedReplay, FeedQueue int
	FeedKeepalive         time.Duration
	Logger                *slog.Logger
	// ReadyCheck is an extra readiness probe (the listener); nil: none.
	Metrics *Metrics
}

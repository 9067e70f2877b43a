package loadgen

import (
	"errors"
	"fmt"
	"io"
	"time"
)

// The reference topology of the throughput targets (the defaults of
// `presencehub bench`): S=50 subscriber sockets × K=100 dialog
// subscriptions over R=1,000 resources, P=4 publisher sockets with
// DefaultWindow PUBLISHes in flight each, for 20 s.
const (
	DefaultSubscribers   = 50
	DefaultSubsPerSocket = 100
	DefaultResources     = 1000
	DefaultPublishers    = 4
	DefaultWindow        = 32
	DefaultDuration      = 20 * time.Second
)

// TokenFunc mints a token for user sub; publisher tokens must allow
// publishing every AOR (claim publish: ["*"]).
type TokenFunc func(sub string, publisher bool) (string, error)

// Config describes a load run (Run).
type Config struct {
	Hub string // hub WebSocket URL, ws://127.0.0.1:8080/ws
	// SubscribeHubs, when set, are the hubs the subscriber sockets connect
	// to (socket i to SubscribeHubs[i mod len]) instead of Hub: hubs that
	// share one store (NATS), so Latency is PUBLISH→NOTIFY across hubs.
	SubscribeHubs []string
	// PublishHub, when set, is the hub the publisher sockets connect to
	// instead of Hub.
	PublishHub string
	Domain     string    // the hub's SIP domain
	Token      TokenFunc // required
	HubPID     int       // hub process to read /proc of; 0: none
	// HubHTTP is the hub's base URL for /metrics (its collections and
	// bytes allocated while publishing); "" skips them.
	HubHTTP string

	Subscribers   int // subscriber sockets (S)
	SubsPerSocket int // dialog subscriptions per subscriber socket (K)
	Resources     int // distinct watched AORs (R); subscription k of socket i watches (i*K+k) mod R
	Publishers    int // publisher sockets (P); resource r belongs to publisher r mod P

	Duration time.Duration // publishing time
	// Rate is the PUBLISH/s all publishers send together; 0 sends as fast
	// as the hub answers, with Window requests in flight per publisher.
	Rate   float64
	Window int // default DefaultWindow

	Expires int           // SUBSCRIBE and PUBLISH Expires; default 3600
	Drain   time.Duration // bound on waiting for every subscription's final state; default 15 s
	// Prefix starts every resource user part (default "bench"): runs with
	// different prefixes do not share state on a long-lived hub.
	Prefix   string
	Progress io.Writer // progress lines while running; nil: none
}

func (c *Config) defaults() error {
	if c.Hub == "" || c.Domain == "" || c.Token == nil {
		return errors.New("loadgen: Hub, Domain and Token are required")
	}
	if c.Subscribers < 0 || c.SubsPerSocket < 0 || c.Resources <= 0 || c.Publishers <= 0 {
		return errors.New("loadgen: need resources > 0, publishers > 0, subscribers >= 0")
	}
	if c.Subscribers*c.SubsPerSocket > 1_000_000 || c.Resources > 1_000_000 || c.Publishers > 1000 {
		return errors.New("loadgen: counts out of bounds (subscriptions ≤ 1e6, resources ≤ 1e6, publishers ≤ 1000)")
	}
	if c.Publishers > c.Resources {
		return fmt.Errorf("loadgen: %d publishers for %d resources: each publisher needs one", c.Publishers, c.Resources)
	}
	if c.PublishHub == "" {
		c.PublishHub = c.Hub
	}
	if len(c.SubscribeHubs) == 0 {
		c.SubscribeHubs = []string{c.Hub}
	}
	if c.Duration <= 0 || c.Duration > 10*time.Minute {
		return errors.New("loadgen: duration must be in (0, 10m]")
	}
	if c.Rate < 0 {
		return errors.New("loadgen: negative rate")
	}
	if c.Window <= 0 {
		c.Window = DefaultWindow
	}
	if c.Expires <= 0 {
		c.Expires = 3600
	}
	if c.Drain <= 0 {
		c.Drain = 15 * time.Second
	}
	if c.Prefix == "" {
		c.Prefix = "bench"
	}
	return nil
}

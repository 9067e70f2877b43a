package main

import (
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// config is every setting of the binary: a flag each, and PRESENCEHUB_<FLAG>
// (upper case, dashes as underscores) in the environment. Flags win.
type config struct {
	HTTPAddr     string
	DB           string
	Domain       string
	JWTSecret    string
	JWTPublicKey string
	JWTIssuer    string
	JWTAudience  string
	LogLevel     string
	LogFormat    string
	TLSCert      string
	TLSKey       string
	Origins      string
	PublicURL    string
	DemoExts     string
	SIPAddr      string
	SIPTrusted   string

	PingInterval      time.Duration
	WriteQueue        int
	MaxMessageSize    int64
	UnauthTimeout     time.Duration
	RequestsPerSecond int
	MaxConnsPerIP     int
	MaxHeaders        int
	MaxSubsPerConn    int
	MaxSubsPerUser    int
	MaxPubsPerUser    int
	PublishMin        time.Duration
	PublishDefault    time.Duration
	SubscribeMin      time.Duration
	RegisterMin       time.Duration
	RebindGrace       time.Duration
	ShutdownTimeout   time.Duration
}

// bind defines the flags of c on fs with their defaults (README, "Configuration").
func (c *config) bind(fs *flag.FlagSet) {
	fs.StringVar(&c.HTTPAddr, "http-addr", "127.0.0.1:8080", "HTTP listen address (/ws, console, /metrics, /healthz, /readyz)")
	fs.StringVar(&c.DB, "db", "./presencehub.db", "SQLite database path (:memory: for none)")
	fs.StringVar(&c.Domain, "domain", "", "SIP domain of AORs (default: the listen host)")
	fs.StringVar(&c.JWTSecret, "jwt-secret", "", "HS256 secret (default: generated and kept next to the database)")
	fs.StringVar(&c.JWTPublicKey, "jwt-public-key", "", "PEM public key file for RS256/ES256/EdDSA tokens")
	fs.StringVar(&c.JWTIssuer, "jwt-issuer", "", "required token issuer (iss)")
	fs.StringVar(&c.JWTAudience, "jwt-audience", "", "required token audience (aud)")
	fs.StringVar(&c.LogLevel, "log-level", "info", "debug, info, warn or error (SIGUSR1 toggles debug at run time)")
	fs.StringVar(&c.LogFormat, "log-format", "auto", "text, json, or auto (text on a terminal, JSON otherwise)")
	fs.StringVar(&c.TLSCert, "tls-cert", "", "TLS certificate file for https/wss (reloaded on SIGHUP)")
	fs.StringVar(&c.TLSKey, "tls-key", "", "TLS key file")
	fs.StringVar(&c.Origins, "origins", "", "extra allowed browser Origins, comma separated (default: same origin only)")
	fs.StringVar(&c.PublicURL, "public-url", "", "URL users reach the hub at, for the printed console link")
	fs.StringVar(&c.SIPAddr, "sip-addr", "", "plain SIP (UDP and TCP) listen address for PBXs that PUBLISH, e.g. 0.0.0.0:5060 (default: off)")
	fs.StringVar(&c.SIPTrusted, "sip-trusted", "127.0.0.1/32,::1/128", "source networks whose plain-SIP PUBLISHes need no token (the PBX), comma separated CIDRs")
	fs.StringVar(&c.DemoExts, "demo-extensions", "1001,1002,1003,1004", "extensions the printed console URL watches")
	fs.DurationVar(&c.PingInterval, "ping-interval", 20*time.Second, "WebSocket ping interval")
	fs.IntVar(&c.WriteQueue, "write-queue", 1024, "messages queued per connection before it is closed as a slow consumer")
	fs.Int64Var(&c.MaxMessageSize, "max-message-size", 64<<10, "largest SIP message in bytes (close 1009 above)")
	fs.DurationVar(&c.UnauthTimeout, "unauth-timeout", 30*time.Second, "close connections without a valid token after this")
	fs.IntVar(&c.RequestsPerSecond, "requests-per-second", 200, "requests per second per connection (burst 4x); 503 above")
	fs.IntVar(&c.MaxConnsPerIP, "max-connections-per-ip", 256, "open WebSocket connections from one address (HTTP 503 above)")
	fs.IntVar(&c.MaxHeaders, "max-headers", 64, "header fields per SIP message (400 above)")
	fs.IntVar(&c.MaxSubsPerConn, "max-subscriptions-per-connection", 1000, "subscriptions per connection (503 above)")
	fs.IntVar(&c.MaxSubsPerUser, "max-subscriptions-per-user", 5000, "subscriptions per token sub (503 above)")
	fs.IntVar(&c.MaxPubsPerUser, "max-publications-per-user", 20000, "live publications per token sub (503 above)")
	fs.DurationVar(&c.PublishMin, "publish-min-expires", 60*time.Second, "minimum PUBLISH expiry (423 below)")
	fs.DurationVar(&c.PublishDefault, "publish-default-expires", time.Hour, "PUBLISH expiry when none is asked for")
	fs.DurationVar(&c.SubscribeMin, "subscribe-min-expires", 60*time.Second, "minimum SUBSCRIBE expiry (423 below)")
	fs.DurationVar(&c.RegisterMin, "register-min-expires", 60*time.Second, "minimum REGISTER expiry (423 below)")
	fs.DurationVar(&c.RebindGrace, "rebind-grace", 32*time.Second, "how long a subscription waits for its client to reconnect")
	fs.DurationVar(&c.ShutdownTimeout, "shutdown-timeout", 10*time.Second, "bound on graceful shutdown")
}

// parse applies PRESENCEHUB_* variables, then the command line.
func (c *config) parse(fs *flag.FlagSet, args []string, getenv func(string) string) error {
	var errs []error
	fs.VisitAll(func(f *flag.Flag) {
		name := "PRESENCEHUB_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v := getenv(name); v != "" {
			if err := f.Value.Set(v); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", name, err))
			}
		}
	})
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if c.Domain == "" {
		host, _, err := net.SplitHostPort(c.HTTPAddr)
		if err != nil || host == "" || net.ParseIP(host) != nil && net.ParseIP(host).IsUnspecified() {
			host = "localhost"
		}
		c.Domain = host
	}
	return nil
}

// keyPath is where a generated HS256 secret is kept: next to the database.
func (c *config) keyPath() string {
	if c.DB == ":memory:" {
		return ""
	}
	return filepath.Join(filepath.Dir(c.DB), "presencehub.key")
}

// secret returns the HS256 secret: configured, or kept in keyPath (created
// with mode 0600 on first run so tokens survive restarts). generated reports
// whether no key was configured (demo mode).
func (c *config) secret() (secret []byte, generated bool, err error) {
	if c.JWTSecret != "" {
		return []byte(c.JWTSecret), false, nil
	}
	if c.JWTPublicKey != "" {
		return nil, false, nil
	}
	path := c.keyPath()
	if path != "" {
		if b, err := os.ReadFile(path); err == nil && len(b) >= 32 {
			return b, true, nil
		}
	}
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	if path != "" {
		if err := os.WriteFile(path, b, 0o600); err != nil {
			return nil, false, fmt.Errorf("keep generated JWT secret in %s: %w", path, err)
		}
	}
	return b, true, nil
}

package servertest

import (
	"context"
	"crypto/rand"
	"net"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/presencehub/presencehub/compositor/store"
	"github.com/presencehub/presencehub/compositor/store/sqlitestore"
	"github.com/presencehub/presencehub/internal/sipclient"
	"github.com/presencehub/presencehub/internal/siprule"
	"github.com/presencehub/presencehub/server"
	"github.com/presencehub/presencehub/server/auth"
	"github.com/presencehub/presencehub/web"
)

// Domain is the SIP domain of test hubs.
const Domain = "hub.test"

// Options change a test hub.
type Options struct {
	// DBPath reuses a database (restart tests); "" makes a new one in t.TempDir().
	DBPath string
	// Secret reuses a signing key (restart tests); nil makes a new one.
	Secret []byte
	// Addr reuses a listen address (restart tests); "" picks 127.0.0.1:0.
	Addr string
	// Store, when set, is the hub's store (a shared NATS store for
	// multi-hub tests) instead of a SQLite file; the hub closes it.
	Store store.Store
	// Configure changes the server config before the hub starts.
	Configure func(*server.Config)
	// HTTPReadTimeout and HTTPIdleTimeout set the HTTP limits
	// (server.HTTPGuardConfig); zero takes their defaults.
	HTTPReadTimeout, HTTPIdleTimeout time.Duration
}

// Hub is a running test hub.
type Hub struct {
	Server *server.Server
	URL    string // http://127.0.0.1:port
	WS     string // ws://127.0.0.1:port/ws
	Addr   string
	DBPath string
	Secret []byte
	signer auth.Signer
	http   *http.Server
	done   chan struct{}
	tb     testing.TB
}

// Start starts a hub; it is closed when the test ends.
func Start(tb testing.TB, opts Options) *Hub {
	tb.Helper()
	if opts.DBPath == "" {
		opts.DBPath = filepath.Join(tb.TempDir(), "presencehub.db")
	}
	if opts.Secret == nil {
		opts.Secret = make([]byte, 32)
		_, _ = rand.Read(opts.Secret)
	}
	if opts.Addr == "" {
		opts.Addr = "127.0.0.1:0"
	}
	v, err := auth.NewVerifier(auth.Config{Secret: opts.Secret, Domain: Domain})
	if err != nil {
		tb.Fatal(err)
	}
	st := opts.Store
	if st == nil {
		var err error
		if st, err = sqlitestore.Open(context.Background(), opts.DBPath, sqlitestore.Options{}); err != nil {
			tb.Fatal(err)
		}
	}
	cfg := server.Config{Domain: Domain, Verifier: v, Store: st, PingInterval: 5 * time.Second}
	if opts.Configure != nil {
		opts.Configure(&cfg)
	}
	if cfg.Metrics == nil {
		cfg.Metrics = server.NewMetrics(nil) // shared with the HTTP guard below
	}
	s, err := server.New(cfg)
	if err != nil {
		st.Close()
		tb.Fatal(err)
	}
	var ln net.Listener
	for i := 0; ; i++ { // a restart may find the port briefly in use
		ln, err = net.Listen("tcp", opts.Addr)
		if err == nil || i == 50 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		s.Close()
		tb.Fatal(err)
	}
	mux := s.Handler()
	mux.Handle("/", web.Handler())
	h := &Hub{
		Server: s,
		Addr:   ln.Addr().String(),
		DBPath: opts.DBPath,
		Secret: opts.Secret,
		signer: auth.Signer{Secret: opts.Secret, Domain: Domain},
		http:   &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second},
		done:   make(chan struct{}),
		tb:     tb,
	}
	// The HTTP limits of the binary (idle and body timeouts, connections per
	// address), with the Config's values.
	server.NewHTTPGuard(server.HTTPGuardConfig{MaxConnsPerIP: cfg.MaxConnsPerIP, ReadTimeout: opts.HTTPReadTimeout,
		IdleTimeout: opts.HTTPIdleTimeout, LimitHit: cfg.Metrics.LimitHit, Logger: cfg.Logger}).Apply(h.http)
	h.URL = "http://" + h.Addr
	h.WS = "ws://" + h.Addr + "/ws"
	go func() { defer close(h.done); _ = h.http.Serve(ln) }()
	tb.Cleanup(h.Close)
	return h
}

// Close stops the hub at once (no final NOTIFYs), like a crash that still
// closes the database cleanly. It is idempotent.
func (h *Hub) Close() {
	select {
	case <-h.done:
		return
	default:
	}
	_ = h.http.Close()
	_ = h.Server.Close()
	<-h.done
}

// Shutdown stops the hub gracefully (final NOTIFYs, 1001 closes).
func (h *Hub) Shutdown(ctx context.Context) error {
	err := h.Server.Shutdown(ctx)
	_ = h.http.Close()
	<-h.done
	return err
}

// Token mints a valid token for sub; fn may change its claims.
func (h *Hub) Token(sub string, fn func(*auth.Claims)) string {
	tok, err := h.signer.Mint(sub, time.Hour, fn)
	if err != nil {
		h.tb.Fatal(err)
	}
	return tok
}

// AOR is the AOR of user on the test domain.
func AOR(user string) string { return siprule.AOR(user, Domain) }

// Dial connects a client authenticated as sub (token on the URL).
func (h *Hub) Dial(ctx context.Context, sub string, opts sipclient.Options) *sipclient.Client {
	h.tb.Helper()
	if opts.Token == "" && sub != "" {
		opts.Token = h.Token(sub, nil)
	}
	c, err := sipclient.Dial(ctx, h.WS, opts)
	if err != nil {
		h.tb.Fatal(err)
	}
	h.tb.Cleanup(c.Close)
	return c
}

package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/presencehub/presencehub/compositor"
	"github.com/presencehub/presencehub/compositor/store"
	"github.com/presencehub/presencehub/compositor/store/memstore"
	"github.com/presencehub/presencehub/compositor/store/sqlitestore"
	"github.com/presencehub/presencehub/internal/siprule"
	"github.com/presencehub/presencehub/server"
	"github.com/presencehub/presencehub/server/auth"
	"github.com/presencehub/presencehub/server/clientaddr"
	"github.com/presencehub/presencehub/server/registrar"
	"github.com/presencehub/presencehub/web"
)

func serve(ctx context.Context, args []string, getenv func(string) string, environ []string, stdout, stderr io.Writer) error {
	var c config
	fs := flag.NewFlagSet("presencehub serve", flag.ContinueOnError)
	fs.SetOutput(stdout)
	c.bind(fs)
	args, cpuProfile := takeFlag(args, "cpuprofile") // hidden: presencehub bench
	args, memProfile := takeFlag(args, "memprofile")
	if err := c.parse(fs, args, getenv); err != nil {
		return err
	}
	stopProfile, err := startCPUProfile(cpuProfile)
	if err != nil {
		return err
	}
	defer stopProfile()
	undoGC, err := c.gcPolicy().apply(getenv)
	if err != nil {
		return err
	}
	defer undoGC()
	level := new(slog.LevelVar)
	if err := level.UnmarshalText([]byte(c.LogLevel)); err != nil {
		return fmt.Errorf("log level: %w", err)
	}
	log := newLogger(c.LogFormat, level, stderr)
	for _, w := range unknownVariables(environ) {
		log.Warn("unknown variable ignored", "var", w.name, "hint", w.hint)
	}
	if c.Store != "nats" { // with NATS, --db only locates a generated secret
		if err := checkDB(c.DB, c.name("db")); err != nil {
			return err
		}
	}

	secret, demo, err := c.hubSecret()
	if err != nil {
		return err
	}
	ac := auth.Config{Secret: secret, Issuer: c.JWTIssuer, Audience: c.JWTAudience, Domain: c.Domain,
		JWKSOptions: auth.JWKSOptions{Refresh: c.JWKSRefresh, UnknownKIDInterval: c.JWKSUnknownKID, LookupTimeout: c.JWKSTimeout, Logger: log}}
	for _, u := range c.JWKSURLs.vals {
		j, err := auth.ParseJWKS(u)
		if err != nil {
			return fmt.Errorf("%s: %w", c.name("jwks-url"), err)
		}
		ac.JWKS = append(ac.JWKS, j)
	}
	if c.JWTPublicKey != "" {
		if ac.PublicKeyPEM, err = os.ReadFile(c.JWTPublicKey); err != nil {
			return fmt.Errorf("%s: read JWT public key: %w", c.name("jwt-public-key"), err)
		}
	}
	trusted, err := parsePrefixes(c.SIPTrusted)
	if err != nil {
		return fmt.Errorf("sip-trusted: %w", err)
	}
	proxyNets, err := parsePrefixes(c.TrustedProxies)
	if err != nil {
		return fmt.Errorf("trusted-proxies: %w", err)
	}
	proxies, err := clientaddr.New(proxyNets)
	if err != nil {
		return err
	}
	verifier, err := auth.NewVerifier(ac)
	if err != nil {
		return err
	}
	defer verifier.Close()
	for _, j := range ac.JWKS {
		log.Info("verifying tokens with a JWKS", "url", j.URL, "issuer", j.Issuer)
	}
	// Listen first: /healthz answers at once and /readyz says "starting"
	// while the store opens and the compositor loads; then the hub's
	// handler takes over.
	var certs *certReloader
	if c.TLSCert != "" {
		if certs, err = newCertReloader(c.TLSCert, c.TLSKey); err != nil {
			return err
		}
	}
	// Every listener is bound before anything serves: one that cannot bind
	// (a PBX already on 5060) ends the start-up with its cause, and nothing
	// is left running.
	ln, udp, tcp, err := listenAll(c.HTTPAddr, c.SIPAddr)
	if err != nil {
		return err
	}
	closeSIP := func() {
		if udp != nil {
			udp.Close()
			tcp.Close()
		}
	}
	ln = proxies.Listener(ln) // PROXY protocol from trusted proxies
	if len(proxyNets) > 0 {
		log.Info("client addresses from trusted proxies (X-Forwarded-For, PROXY protocol)", "trusted_proxies", c.TrustedProxies)
	}
	var handler atomic.Pointer[http.Handler]
	starting := startingHandler()
	handler.Store(&starting)
	hs := &http.Server{
		Handler:           http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { (*handler.Load()).ServeHTTP(w, r) }),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	metrics := server.NewMetrics(nil) // the hub's, shared with the HTTP guard
	guardCfg := server.HTTPGuardConfig{MaxConnsPerIP: c.MaxConnsPerIP, ReadTimeout: c.HTTPReadTimeout, IdleTimeout: c.HTTPIdleTimeout,
		Exempt: proxies.Trusted, LimitHit: metrics.LimitHit, Logger: log}
	server.NewHTTPGuard(guardCfg).Apply(hs)
	if certs != nil {
		hs.TLSConfig = &tls.Config{GetCertificate: certs.get, MinVersion: tls.VersionTLS12}
	}
	served := make(chan error, 1)
	go func() {
		if certs != nil {
			served <- hs.ServeTLS(ln, "", "")
		} else {
			served <- hs.Serve(ln)
		}
	}()
	stopHTTP := func() {
		_ = hs.Close()
		<-served
	}
	log.Info("presencehub listening", "addr", ln.Addr().String())

	st, err := openStore(ctx, &c, log)
	if err != nil {
		stopHTTP()
		closeSIP()
		return err
	}
	var regStore registrar.Store // nil: in memory, this hub's sockets only
	if cs, ok := st.(connStore); ok {
		if regStore, err = openNATSRegistrations(ctx, cs.nc, &c, log); err != nil {
			st.Close()
			stopHTTP()
			closeSIP()
			return err
		}
	}
	// A minimum of 0 means no minimum: one second.
	pubExp := siprule.ExpiryPolicy{Default: c.PublishDefault, Min: max(c.PublishMin, time.Second), Max: 24 * time.Hour}
	subExp := siprule.ExpiryPolicy{Min: max(c.SubscribeMin, time.Second)}
	srv, err := server.New(server.Config{
		Domain:                     c.Domain,
		Verifier:                   verifier,
		Store:                      st,
		OriginPatterns:             splitList(c.Origins),
		MaxMessageSize:             c.MaxMessageSize,
		PingInterval:               c.PingInterval,
		WriteQueue:                 c.WriteQueue,
		UnauthTimeout:              c.UnauthTimeout,
		RequestsPerSecond:          c.RequestsPerSecond,
		PublisherRequestsPerSecond: c.PubRequestsPerSec,
		MaxPubsPerResource:         c.MaxPubsPerRes,
		MaxDialogsPerResource:      c.MaxDialogsPerRes,
		MaxConnsPerIP:              c.MaxConnsPerIP,
		MaxHeaders:                 c.MaxHeaders,
		MaxHeaderLength:            c.MaxHeaderLength,
		MaxSubsPerConn:             c.MaxSubsPerConn,
		MaxSubsPerUser:             c.MaxSubsPerUser,
		MaxPubsPerUser:             c.MaxPubsPerUser,
		PublishesInFlight:          c.publishConcurrency(),
		NodeID:                     c.NodeID,
		PublishExpiry:              map[string]siprule.ExpiryPolicy{compositor.EventPresence: pubExp, compositor.EventDialog: pubExp, compositor.EventMessageSummary: pubExp},
		SubscribeExpiry:            map[string]siprule.ExpiryPolicy{compositor.EventPresence: subExp, compositor.EventDialog: subExp, compositor.EventMessageSummary: subExp},
		Register:                   registrar.Config{Expiry: siprule.ExpiryPolicy{Min: max(c.RegisterMin, time.Second)}, MaxPerAOR: c.MaxBindingsPerAOR, Store: regStore},
		RebindGrace:                c.RebindGrace,
		ListBatch:                  listBatch(c.ListBatch),
		MaxListMembers:             c.MaxListMembers,
		Compression:                c.WSCompression,
		FeedReplay:                 c.FeedReplay,
		FeedQueue:                  c.FeedQueue,
		FeedKeepalive:              c.FeedKeepalive,
		TLS:                        c.TLSCert != "",
		SIPTrusted:                 trusted,
		Logger:                     log,
		Metrics:                    metrics,
	})
	if err != nil {
		st.Close()
		stopHTTP()
		closeSIP()
		return err
	}
	mux := srv.Handler()
	mux.Handle("/", web.Handler())
	var h http.Handler = proxies.Handler(guardMetrics(mux, c.MetricsToken, c.MetricsAddr != ""))
	if c.MetricsAddr != "" {
		mln, err := net.Listen("tcp", c.MetricsAddr)
		if err != nil {
			stopHTTP()
			srv.Close()
			closeSIP()
			return fmt.Errorf("%s: listen: %w", c.name("metrics-addr"), err)
		}
		ms := &http.Server{Handler: metricsOnly(mux, c.MetricsToken), ReadHeaderTimeout: 10 * time.Second, ErrorLog: hs.ErrorLog}
		server.NewHTTPGuard(guardCfg).Apply(ms)
		metricsDone := make(chan struct{})
		go func() { defer close(metricsDone); _ = ms.Serve(mln) }()
		defer func() { _ = ms.Close(); <-metricsDone }()
		log.Info("metrics serving", "addr", mln.Addr().String(), "token", c.MetricsToken != "")
	}
	handler.Store(&h)
	sipDone := make(chan error, 1)
	sipCtx, stopSIP := context.WithCancel(context.Background())
	stopSIPListener := sync.OnceFunc(func() { stopSIP(); <-sipDone })
	defer stopSIPListener()
	var sipFailed <-chan error // receives only when the SIP listener ends by itself
	if udp != nil {
		tcpAddr := tcp.Addr().String()
		sipTCP := proxies.Listener(tcp) // PROXY protocol from trusted proxies
		go func() { sipDone <- srv.ServeSIP(sipCtx, udp, sipTCP) }()
		sipFailed = sipDone
		log.Info("plain SIP for PBXs", "addr", udp.LocalAddr().String(), "tcp", tcpAddr, "trusted", c.SIPTrusted)
	} else {
		sipDone <- nil
	}
	scheme := "http"
	if certs != nil {
		scheme = "https"
	}
	base := c.PublicURL
	if base == "" {
		base = scheme + "://" + ln.Addr().String()
	}
	// Before "serving": a signal sent on that line must find its handler.
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGHUP, syscall.SIGUSR1)
	defer signal.Stop(signals)
	log.Info("presencehub serving", "addr", ln.Addr().String(), "domain", c.Domain, "store", c.storeDesc(), "ws", strings.Replace(base, "http", "ws", 1)+"/ws")
	if demo {
		tok, err := c.signer(secret).Mint("console", 12*time.Hour, func(cl *auth.Claims) { cl.Publish = []string{} })
		if err == nil {
			fmt.Fprintf(stdout, "\nAttendant console (demo token, valid 12 h):\n  %s/?token=%s&ext=%s\n\nMake 1001 ring:  presencehub publish --as 1001 --state early\n\n",
				base, url.QueryEscape(tok), url.QueryEscape(c.DemoExts))
		}
	}

	for {
		select {
		case sig := <-signals:
			switch sig {
			case syscall.SIGHUP:
				if certs != nil {
					if err := certs.reload(); err != nil {
						log.Error("TLS reload failed; keeping the old certificate", "err", err)
					} else {
						log.Info("TLS certificate reloaded")
					}
				}
			case syscall.SIGUSR1:
				if level.Level() == slog.LevelDebug {
					_ = level.UnmarshalText([]byte(c.LogLevel))
				} else {
					level.Set(slog.LevelDebug)
				}
				log.Info("log level changed", "level", level.Level().String())
			}
		case err := <-served:
			srv.Close()
			return fmt.Errorf("http: %w", err)
		case err := <-sipFailed:
			sipDone <- err // for stopSIPListener
			stopHTTP()
			srv.Close()
			return fmt.Errorf("plain SIP listener ended: %w", err)
		case <-ctx.Done():
			if err := writeHeapProfile(memProfile); err != nil { // live connections still held
				log.Error("heap profile", "err", err)
			}
			log.Info("shutting down")
			stopSIPListener() // no PUBLISH may reach a closing store
			sctx, cancel := context.WithTimeout(context.Background(), c.ShutdownTimeout)
			defer cancel()
			_ = ln.Close()
			err := srv.Shutdown(sctx)
			_ = hs.Shutdown(sctx)
			if err != nil && !errors.Is(err, context.DeadlineExceeded) {
				return err
			}
			log.Info("stopped")
			return nil
		}
	}
}

// startingHandler serves while the hub starts: /healthz 200 (the process
// runs), /readyz and everything else 503 with Retry-After.
func startingHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "1")
		http.Error(w, "starting", http.StatusServiceUnavailable)
	})
	return mux
}

// listenAll binds the HTTP listener and, when sipAddr is set, the plain-SIP
// UDP and TCP listeners; on any failure it closes what it bound and says
// which flag's address failed and why.
func listenAll(httpAddr, sipAddr string) (ln net.Listener, udp net.PacketConn, tcp net.Listener, err error) {
	if ln, err = net.Listen("tcp", httpAddr); err != nil {
		return nil, nil, nil, fmt.Errorf("cannot listen on --http-addr %s: %w", httpAddr, unwrapOp(err))
	}
	if sipAddr == "" {
		return ln, nil, nil, nil
	}
	if udp, err = net.ListenPacket("udp", sipAddr); err != nil {
		ln.Close()
		return nil, nil, nil, fmt.Errorf("cannot listen on --sip-addr %s (UDP): %w", sipAddr, unwrapOp(err))
	}
	if tcp, err = net.Listen("tcp", sipAddr); err != nil {
		ln.Close()
		udp.Close()
		return nil, nil, nil, fmt.Errorf("cannot listen on --sip-addr %s (TCP): %w", sipAddr, unwrapOp(err))
	}
	return ln, udp, tcp, nil
}

// unwrapOp drops net.OpError's "listen tcp 1.2.3.4:5:" prefix, which the
// message around it already says.
func unwrapOp(err error) error {
	var op *net.OpError
	if errors.As(err, &op) && op.Err != nil {
		return op.Err
	}
	return err
}

func openStore(ctx context.Context, c *config, log *slog.Logger) (store.Store, error) {
	if c.Store == "nats" {
		st, err := openNATSStore(ctx, c, log)
		if err != nil {
			return nil, err
		}
		return st, nil
	}
	path := c.DB
	if path == ":memory:" {
		return memstore.New(memstore.Options{}), nil
	}
	st, err := sqlitestore.Open(ctx, path, sqlitestore.Options{Logger: log})
	if err != nil {
		return nil, fmt.Errorf("open database %s: %w", path, err)
	}
	return st, nil
}

func newLogger(format string, level *slog.LevelVar, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level}
	if format == "auto" {
		format = "json"
		if f, ok := w.(*os.File); ok {
			if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
				format = "text"
			}
		}
	}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// certReloader serves the current certificate; reload swaps it atomically so
// open connections are not dropped.
type certReloader struct {
	certFile, keyFile string
	cert              atomic.Pointer[tls.Certificate]
}

func newCertReloader(certFile, keyFile string) (*certReloader, error) {
	r := &certReloader{certFile: certFile, keyFile: keyFile}
	return r, r.reload()
}

func (r *certReloader) reload() error {
	c, err := tls.LoadX509KeyPair(r.certFile, r.keyFile)
	if err != nil {
		return fmt.Errorf("load TLS certificate: %w", err)
	}
	r.cert.Store(&c)
	return nil
}

func (r *certReloader) get(*tls.ClientHelloInfo) (*tls.Certificate, error) { return r.cert.Load(), nil }

func parsePrefixes(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, p := range splitList(s) {
		pfx, err := netip.ParsePrefix(p)
		if err != nil {
			return nil, err
		}
		out = append(out, pfx.Masked())
	}
	return out, nil
}

// publishConcurrency is --publish-concurrency, 1 by default with the
// in-memory store: it has no commits to share and is fastest with a
// connection's PUBLISHes in order (measured with bench).
func (c *config) publishConcurrency() int {
	if c.DB == ":memory:" && !c.fromCLI["publish-concurrency"] && !c.fromEnv["publish-concurrency"] {
		return 1
	}
	return c.PublishConcurrency
}

// listBatch maps the flag (0: no batching) to server.Config (negative: none).
func listBatch(d time.Duration) time.Duration {
	if d == 0 {
		return -1
	}
	return d
}

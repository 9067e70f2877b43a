package server

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"github.com/emiago/sipgo/sip"
	"github.com/presencehub/presencehub/compositor"
	"github.com/presencehub/presencehub/internal/siprule"
	"github.com/presencehub/presencehub/server/feed"
	"github.com/presencehub/presencehub/server/flow"
	"github.com/presencehub/presencehub/server/notifier"
	"github.com/presencehub/presencehub/server/providers"
	"github.com/presencehub/presencehub/server/registrar"
	"github.com/presencehub/presencehub/wsproto"
)

// Server is one running hub.
type Server struct {
	cfg       Config
	log       *slog.Logger
	refusals  refusalLog // info lines for refused plain-SIP requests
	comp      *compositor.Compositor
	notifier  *notifier.Notifier
	registrar *registrar.Registrar
	parser    *sip.Parser
	metrics   *Metrics
	wsOpts    wsproto.Options
	contact   string
	// publishExpiry is the PUBLISH expiry policy of each event package the
	// compositor accepts.
	publishExpiry map[string]siprule.ExpiryPolicy
	// parseAll sends every message through sipgo's parse, none through
	// the plain path (tests compare the two).
	parseAll bool

	ctx      context.Context // lives until Close
	cancel   context.CancelFunc
	wg       sync.WaitGroup // connections and background goroutines
	mu       sync.Mutex
	conns    map[*wsproto.Conn]*flow.Flow
	perIP    map[string]int
	draining bool
	unsub    func()

	feed           *feed.Feed
	feedStop       chan struct{} // closed when the hub stops: streams end
	feedStopOnce   sync.Once
	feedWatched    map[string]int // token sub → resources watched over its open streams
	feedMaxPerConn int
	feedMaxPerUser int

	storeFault       atomic.Pointer[storeFault]
	storeFaultLogged atomic.Value // time.Time of the last store-fault log line

	regPrefix string // Publisher prefix of this node's registration presence
	regMu     sync.Mutex
	regETags  map[string]string    // AOR → entity-tag of its registration presence
	regUntil  map[string]time.Time // AOR → when that publication expires

	closeOnce sync.Once
	closeErr  error
}

// New opens the compositor on cfg.Store, wires the notifier to its change
// feed and returns a hub ready to serve. Close releases everything.
func New(cfg Config) (*Server, error) {
	if cfg.Domain == "" || cfg.Verifier == nil || cfg.Store == nil {
		return nil, errors.New("server: Domain, Verifier and Store are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.UnauthTimeout == 0 {
		cfg.UnauthTimeout = 30 * time.Second
	}
	if cfg.RequestsPerSecond == 0 {
		cfg.RequestsPerSecond = 200
	}
	if cfg.PublisherRequestsPerSecond == 0 {
		cfg.PublisherRequestsPerSecond = 20000
	}
	if cfg.PublishesInFlight == 0 {
		cfg.PublishesInFlight = 32
	}
	if cfg.MaxConnsPerIP == 0 {
		cfg.MaxConnsPerIP = 256
	}
	if cfg.MaxHeaders == 0 {
		cfg.MaxHeaders = 64
	}
	if cfg.MaxHeaderLength == 0 {
		cfg.MaxHeaderLength = 8192
	}
	if cfg.Metrics == nil {
		cfg.Metrics = NewMetrics(nil)
	}
	ctx, cancel := context.WithCancel(context.Background())
	if cfg.MaxPubsPerUser == 0 {
		cfg.MaxPubsPerUser = 20000
	}
	comp, err := compositor.New(ctx, compositor.Config{Store: cfg.Metrics.instrumentStore(cfg.Store),
		Logger: cfg.Logger, MaxPerPublisher: cfg.MaxPubsPerUser,
		MaxPublicationsPerResource: cfg.MaxPubsPerResource, MaxDialogsPerResource: cfg.MaxDialogsPerResource})
	if err != nil {
		cancel()
		return nil, fmt.Errorf("server: open compositor: %w", err)
	}
	transport, uriTransport := "WS", "ws"
	if cfg.TLS {
		transport, uriTransport = "WSS", "wss"
	}
	s := &Server{
		cfg:       cfg,
		log:       cfg.Logger,
		comp:      comp,
		registrar: registrar.New(regConfig(cfg)),
		parser:    sip.NewParser(),
		metrics:   cfg.Metrics,
		ctx:       ctx,
		cancel:    cancel,
		conns:     make(map[*wsproto.Conn]*flow.Flow),
		perIP:     make(map[string]int),
		regETags:  make(map[string]string),
		regPrefix: regPrefix(cfg.NodeID),
		regUntil:  make(map[string]time.Time),
		contact:   "<sip:presencehub@" + cfg.Domain + ";transport=" + uriTransport + ">",
	}
	s.storeFaultLogged.Store(time.Time{})
	s.publishExpiry = make(map[string]siprule.ExpiryPolicy)
	for _, ev := range comp.Events() {
		s.publishExpiry[ev] = cfg.PublishExpiry[ev].Or(DefaultPublishExpiry)
	}
	s.wsOpts = wsproto.Options{
		OriginPatterns: cfg.OriginPatterns,
		MaxMessageSize: cfg.MaxMessageSize,
		PingInterval:   cfg.PingInterval,
		WriteQueue:     cfg.WriteQueue,
		Compression:    compressionMode(cfg.Compression),
		Logger:         cfg.Logger,
	}
	reg := &notifier.Registry{}
	if err := providers.Register(reg); err != nil {
		cancel()
		comp.Close()
		return nil, err
	}
	s.notifier = notifier.New(notifier.Config{
		Views:          comp,
		Providers:      reg,
		Expiry:         cfg.SubscribeExpiry,
		Contact:        s.contact,
		ViaHost:        cfg.Domain,
		ViaTransport:   transport,
		RebindGrace:    cfg.RebindGrace,
		MaxPerFlow:     cfg.MaxSubsPerConn,
		MaxPerWatcher:  cfg.MaxSubsPerUser,
		Domain:         cfg.Domain,
		ListBatch:      cfg.ListBatch,
		MaxListMembers: cfg.MaxListMembers,
		Observer:       s.metrics,
		AdoptDialogs:   cfg.NodeID != "", // hubs sharing a store take over each other's dialogs
		Logger:         cfg.Logger,
	})
	if err := s.loadLists(ctx); err != nil {
		cancel()
		comp.Close()
		return nil, fmt.Errorf("server: %w", err)
	}
	if err := s.clearRegPresence(ctx); err != nil {
		cancel()
		comp.Close()
		return nil, fmt.Errorf("server: clear registration presence: %w", err)
	}
	s.feedStop = make(chan struct{})
	s.feedWatched = map[string]int{}
	s.feedMaxPerConn, s.feedMaxPerUser = cmp.Or(cfg.MaxSubsPerConn, 1000), cmp.Or(cfg.MaxSubsPerUser, 5000)
	if s.feed, err = feed.New(feed.Config{Views: comp, Replay: cfg.FeedReplay, Queue: cfg.FeedQueue,
		Keepalive: cfg.FeedKeepalive, Observer: feedObserver{s.metrics}}); err != nil {
		cancel()
		comp.Close()
		return nil, err
	}
	s.unsub = comp.Subscribe(func(c compositor.Change) {
		s.metrics.stateChanged(c)
		s.notifier.OnChange(c)
		s.feed.OnChange(c)
	})
	s.wg.Add(1)
	go func() { defer s.wg.Done(); s.notifier.Run(ctx) }()
	s.metrics.bind(ctx, s.registrar, comp, cfg.Store)
	return s, nil
}

// registrarTimeout bounds the registrar's store operations of one REGISTER
// or closed flow (a shared store's leader election answers 503 meanwhile).
const registrarTimeout = 5 * time.Second

func regConfig(cfg Config) registrar.Config {
	rc := cfg.Register
	rc.LimitHit = cfg.Metrics.limitHit
	rc.Node = cfg.NodeID
	return rc
}

// Compositor is the hub's Event State Compositor (embedding, admin).
func (s *Server) Compositor() *compositor.Compositor { return s.comp }

// Notifier is the hub's notifier; register extra providers on its Providers().
func (s *Server) Notifier() *notifier.Notifier { return s.notifier }

// Registrar is the hub's registrar.
func (s *Server) Registrar() *registrar.Registrar { return s.registrar }

// Handler serves /ws, /healthz, /readyz, /metrics and /api/; extra handlers
// (the console at /) are mounted by the caller on the returned mux.
func (s *Server) Handler() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("/ws", s.serveWS)
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("/readyz", s.serveReady)
	mux.Handle("/metrics", s.metrics.Handler())
	mux.Handle("/api/", s.apiHandler())
	mux.HandleFunc("/api/feed", s.serveFeed)
	return mux
}

func (s *Server) serveReady(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain")
	s.mu.Lock()
	draining := s.draining
	s.mu.Unlock()
	if draining {
		http.Error(w, "shutting down", http.StatusServiceUnavailable)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := s.comp.Ready(ctx); err != nil {
		http.Error(w, "store not ready: "+err.Error(), http.StatusServiceUnavailable)
		return
	}
	if f := s.storeFault.Load(); f != nil {
		http.Error(w, fmt.Sprintf("store write failed %s ago: %v", time.Since(f.at).Round(time.Second), f.err), http.StatusServiceUnavailable)
		return
	}
	fmt.Fprintln(w, "ready")
}

// Shutdown drains the hub (docs/protocol.md, "Shutdown"): no new
// connections, a final NOTIFY with reason deactivated to every subscriber
// (RFC 6665 §4.1.3), sockets closed with 1001, the store flushed and
// closed. It is bounded by ctx.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.draining = true
	s.mu.Unlock()
	s.stopFeeds()
	err := s.notifier.Shutdown(ctx)
	s.mu.Lock()
	for c := range s.conns {
		c.Close(websocket.StatusGoingAway, "server shutting down")
	}
	s.mu.Unlock()
	return errors.Join(err, s.Close())
}

// Close stops everything at once (no final NOTIFYs) and closes the store.
// It is idempotent.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.draining = true
		for c := range s.conns {
			c.Close(websocket.StatusGoingAway, "server closing")
		}
		s.mu.Unlock()
		s.stopFeeds()
		s.cancel()
		s.wg.Wait()
		if s.unsub != nil {
			s.unsub()
		}
		s.closeErr = errors.Join(s.comp.Close(), s.cfg.Store.Close())
	})
	return s.closeErr
}

// compressionMode maps Config.Compression to coder/websocket's modes.
func compressionMode(s string) websocket.CompressionMode {
	switch s {
	case "off":
		return websocket.CompressionDisabled
	case "context-takeover":
		return websocket.CompressionContextTakeover
	}
	return websocket.CompressionNoContextTakeover
}

// stopFeeds ends every state-feed stream (an end event, reason "shutting
// down"); EventSource then reconnects, to another hub behind a balancer.
func (s *Server) stopFeeds() { s.feedStopOnce.Do(func() { close(s.feedStop) }) }

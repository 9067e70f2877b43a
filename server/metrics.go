package server

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"github.com/presencehub/presencehub/compositor"
	"github.com/presencehub/presencehub/compositor/store"
	"github.com/presencehub/presencehub/server/auth"
	"github.com/presencehub/presencehub/server/flow"
	"github.com/presencehub/presencehub/server/registrar"
	"github.com/presencehub/presencehub/wsproto"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics are the hub's Prometheus metrics (no per-user labels). They are
// fed by events of the parts that own them (the connection layer, the
// notifier as notifier.Observer, the PUBLISH path, the compositor's change
// feed, the store) and never parse messages back or lock the server.
type Metrics struct {
	reg *prometheus.Registry

	opened    prometheus.Counter
	closes    *prometheus.CounterVec
	responses *prometheus.CounterVec
	// respCounters caches responses' counters by responseKey: looked up
	// per answer without hashing the labels or formatting the code.
	respCounters sync.Map
	notifies     *prometheus.CounterVec
	// notifyCounters caches notifies' counters by notifyKey (one lookup
	// per NOTIFY, without hashing the labels): bounded by the event
	// packages of the registered providers × the results.
	notifyCounters sync.Map
	notifyFailed   *prometheus.CounterVec
	notifyRTT      prometheus.Histogram
	authFailures   *prometheus.CounterVec
	malformedMsgs  prometheus.Counter
	limited        *prometheus.CounterVec
	subs           *prometheus.GaugeVec
	stateChanges   *prometheus.CounterVec
	pubLatency     prometheus.Histogram
	storeLatency   *prometheus.HistogramVec
	storeErrors    *prometheus.CounterVec
	feedClients    prometheus.Gauge
	feedCloses     *prometheus.CounterVec
	feedEvents     prometheus.Counter
	feedBytes      prometheus.Counter
	feedSnapshots  *prometheus.CounterVec
	feedDrops      prometheus.Counter

	lat   latencyTracker
	conns connSet
}

// NewMetrics registers the hub's metrics and the Go runtime collectors on
// reg (a new registry when nil).
func NewMetrics(reg *prometheus.Registry) *Metrics {
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	m := &Metrics{
		reg: reg,
		opened: prometheus.NewCounter(prometheus.CounterOpts{Name: "presencehub_connections_opened_total",
			Help: "Accepted SIP-over-WebSocket connections."}),
		closes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "presencehub_connections_closed_total",
			Help: "Closed connections by reason (normal, slow_consumer, too_big, policy, error)."}, []string{"reason"}),
		responses: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "presencehub_sip_responses_total",
			Help: "SIP responses sent, by request method and status code."}, []string{"method", "code"}),
		notifies: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "presencehub_notifies_total",
			Help: "NOTIFYs by event and outcome (sent = answered 2xx, deduplicated = not sent because unchanged)."}, []string{"event", "outcome"}),
		notifyFailed: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "presencehub_notify_failures_total",
			Help: "NOTIFYs that failed, by event and reason (status code or timeout)."}, []string{"event", "reason"}),
		notifyRTT: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "presencehub_notify_round_trip_seconds",
			Help: "Time from sending a NOTIFY to its 2xx.", Buckets: prometheus.ExponentialBuckets(0.0001, 2.5, 12)}),
		authFailures: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "presencehub_auth_failures_total",
			Help: "Refused tokens by reason."}, []string{"reason"}),
		malformedMsgs: prometheus.NewCounter(prometheus.CounterOpts{Name: "presencehub_malformed_messages_total",
			Help: "SIP messages that could not be parsed or lacked mandatory headers."}),
		limited: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "presencehub_limit_hits_total",
			Help: "Requests or connections refused by a limit, by limit."}, []string{"limit"}),
		subs: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "presencehub_subscriptions",
			Help: "Active subscriptions by event."}, []string{"event"}),
		stateChanges: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "presencehub_state_changes_total",
			Help: "Composed-state changes of resources, by event."}, []string{"event"}),
		pubLatency: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "presencehub_publish_to_notify_seconds",
			Help:    "Time from receiving a PUBLISH that changed a resource's state to writing the first NOTIFY that carries it.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2.5, 14)}),
		storeLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "presencehub_store_operation_seconds",
			Help:    "Duration of publication store operations, by operation.",
			Buckets: prometheus.ExponentialBuckets(0.00005, 3, 12)}, []string{"op"}),
		storeErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "presencehub_store_errors_total",
			Help: "Failed publication store operations (not found and revision conflicts excluded), by operation."}, []string{"op"}),
		feedClients: prometheus.NewGauge(prometheus.GaugeOpts{Name: "presencehub_feed_clients",
			Help: "Open state-feed streams (GET /api/feed)."}),
		feedCloses: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "presencehub_feed_closed_total",
			Help: "Closed state-feed streams by reason (client_gone, token_expired, shutdown, write_error)."}, []string{"reason"}),
		feedEvents: prometheus.NewCounter(prometheus.CounterOpts{Name: "presencehub_feed_events_total",
			Help: "State events written to state-feed clients (snapshots not counted)."}),
		feedBytes: prometheus.NewCounter(prometheus.CounterOpts{Name: "presencehub_feed_bytes_total",
			Help: "Bytes of state events and snapshots written to state-feed clients."}),
		feedSnapshots: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "presencehub_feed_snapshots_total",
			Help: "Snapshots written to state-feed clients, by reason (initial, resume_gap, slow_client)."}, []string{"reason"}),
		feedDrops: prometheus.NewCounter(prometheus.CounterOpts{Name: "presencehub_feed_drops_total",
			Help: "Times a state-feed client's queue was full: its queued events were dropped for a fresh snapshot."}),
	}
	m.lat.arrived = make(map[latencyKey]time.Time)
	m.lat.changed = make(map[latencyKey]time.Time)
	m.conns.m = make(map[*flow.Flow]queued)
	reg.MustRegister(&m.conns, m.opened, m.closes, m.responses, m.notifies, m.notifyFailed, m.notifyRTT,
		m.authFailures, m.malformedMsgs, m.limited, m.subs, m.stateChanges, m.pubLatency, m.storeLatency, m.storeErrors,
		m.feedClients, m.feedCloses, m.feedEvents, m.feedBytes, m.feedSnapshots, m.feedDrops,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Handler serves the metrics in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// bind adds the metrics that are read at scrape time from the registrar,
// the compositor and a shared store, through their own APIs.
func (m *Metrics) bind(ctx context.Context, reg *registrar.Registrar, comp *compositor.Compositor, st store.Store) {
	m.reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "presencehub_registrations",
			Help: "Live REGISTER bindings."}, func() float64 { return float64(reg.Count()) }),
		&publicationsCollector{ctx: ctx, comp: comp},
	)
	if bs, ok := st.(store.Batching); ok {
		m.reg.MustRegister(commitCollector{bs})
	}
	if rs, ok := st.(ReplicatedStore); ok {
		m.reg.MustRegister(
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "presencehub_store_replication_lag_seconds",
				Help: "Time from a change's commit in the shared store to this hub's copy (last change applied)."},
				func() float64 { return rs.ReplicationLag().Seconds() }),
			prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "presencehub_store_watch_resumes_total",
				Help: "Times this hub's change stream from the shared store resumed at the next revision (reconnect, lost consumer)."},
				func() float64 { return float64(rs.WatchResumes()) }),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "presencehub_store_writes_in_doubt",
				Help: "Writes answered 503 whose fate the shared store is still settling (undone if they were stored)."},
				func() float64 { return float64(rs.WritesInDoubt()) }),
		)
	}
}

// ReplicatedStore is a store shared by several hubs (natsstore); the hub
// exports its replication metrics.
type ReplicatedStore interface {
	ReplicationLag() time.Duration
	WatchResumes() uint64
	WritesInDoubt() int64
}

var (
	connectionsDesc = prometheus.NewDesc("presencehub_connections",
		"Open SIP-over-WebSocket connections, by state (unauthenticated: no valid token presented yet).", []string{"state"}, nil)
	writeQueueDesc = prometheus.NewDesc("presencehub_write_queue_messages",
		"Messages waiting in all connections' write queues.", nil, nil)
	writeQueueMaxDesc = prometheus.NewDesc("presencehub_write_queue_max_messages",
		"Messages waiting in the fullest connection's write queue (a slow consumer is closed when it is full).", nil, nil)
	publicationsDesc = prometheus.NewDesc("presencehub_publications",
		"Live publications in the store, by event package.", []string{"event"}, nil)
)

var writesPerCommitDesc = prometheus.NewDesc("presencehub_store_writes_per_commit",
	"Writes (publication creates, replaces, deletes) per store transaction: concurrent PUBLISHes share one commit (group commit).", nil, nil)

// commitCollector reads a batching store's transactions by size at scrape
// time, as a histogram.
type commitCollector struct{ st store.Batching }

func (c commitCollector) Describe(ch chan<- *prometheus.Desc) { ch <- writesPerCommitDesc }

func (c commitCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.st.CommitStats()
	buckets := make(map[float64]uint64, len(st.Buckets))
	var cum uint64
	for i, n := range st.Buckets {
		cum += n
		buckets[float64(uint(1)<<i)] = cum
	}
	ch <- prometheus.MustNewConstHistogram(writesPerCommitDesc, st.Commits, float64(st.Writes), buckets)
}

// queued is what the metrics read of a connection: its write queue.
type queued interface{ QueueLen() int }

// connSet is the open connections as the connection layer reports them
// (connOpened, connClosed); the gauges are read from it at scrape time.
type connSet struct {
	mu sync.Mutex
	m  map[*flow.Flow]queued
}

func (c *connSet) Describe(ch chan<- *prometheus.Desc) {
	ch <- connectionsDesc
	ch <- writeQueueDesc
	ch <- writeQueueMaxDesc
}

func (c *connSet) Collect(ch chan<- prometheus.Metric) {
	var authed, unauthed, queuedMsgs, deepest int
	c.mu.Lock()
	for fl, q := range c.m {
		if fl.Identity() != nil {
			authed++
		} else {
			unauthed++
		}
		n := q.QueueLen()
		queuedMsgs += n
		deepest = max(deepest, n)
	}
	c.mu.Unlock()
	ch <- prometheus.MustNewConstMetric(connectionsDesc, prometheus.GaugeValue, float64(authed), "authenticated")
	ch <- prometheus.MustNewConstMetric(connectionsDesc, prometheus.GaugeValue, float64(unauthed), "unauthenticated")
	ch <- prometheus.MustNewConstMetric(writeQueueDesc, prometheus.GaugeValue, float64(queuedMsgs))
	ch <- prometheus.MustNewConstMetric(writeQueueMaxDesc, prometheus.GaugeValue, float64(deepest))
}

// publicationsCollector counts the live publications at scrape time.
type publicationsCollector struct {
	ctx  context.Context
	comp *compositor.Compositor
}

func (c *publicationsCollector) Describe(ch chan<- *prometheus.Desc) { ch <- publicationsDesc }

func (c *publicationsCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(c.ctx, 2*time.Second)
	defer cancel()
	counts, err := c.comp.Counts(ctx) // O(1): the store keeps them
	if err != nil {
		ch <- prometheus.NewInvalidMetric(publicationsDesc, err)
		return
	}
	byEvent := make(map[string]int, 2)
	for _, ev := range c.comp.Events() {
		byEvent[ev] = counts.Events[ev]
	}
	for ev, n := range byEvent {
		ch <- prometheus.MustNewConstMetric(publicationsDesc, prometheus.GaugeValue, float64(n), ev)
	}
}

// connOpened is reported by the connection layer when a connection starts
// being served, connClosed when it ended.
func (m *Metrics) connOpened(fl *flow.Flow, q queued) {
	m.opened.Inc()
	m.conns.mu.Lock()
	m.conns.m[fl] = q
	m.conns.mu.Unlock()
}

func (m *Metrics) connClosed(fl *flow.Flow, err error) {
	m.conns.mu.Lock()
	delete(m.conns.m, fl)
	m.conns.mu.Unlock()
	reason := "normal"
	switch {
	case errors.Is(err, wsproto.ErrSlowConsumer):
		reason = "slow_consumer"
	case err == nil, websocket.CloseStatus(err) == websocket.StatusNormalClosure, websocket.CloseStatus(err) == websocket.StatusGoingAway:
	case websocket.CloseStatus(err) == websocket.StatusMessageTooBig:
		reason = "too_big"
	case websocket.CloseStatus(err) == websocket.StatusPolicyViolation:
		reason = "policy"
	default:
		reason = "error"
	}
	m.closes.WithLabelValues(reason).Inc()
}

func (m *Metrics) response(method string, code int) {
	key := responseKey{methodLabel(method), code}
	if c, ok := m.respCounters.Load(key); ok {
		c.(prometheus.Counter).Inc()
		return
	}
	c := m.responses.WithLabelValues(key.method, strconv.Itoa(code))
	m.respCounters.Store(key, c) // bounded: methodLabel's methods × status codes
	c.Inc()
}

type responseKey struct {
	method string
	code   int
}

// methodLabel bounds the method label: a client may send any token as a
// method (answered 405), which must not create a new time series.
func methodLabel(method string) string {
	switch method {
	case "REGISTER", "PUBLISH", "SUBSCRIBE", "NOTIFY", "OPTIONS", "INVITE", "ACK", "BYE", "CANCEL",
		"INFO", "MESSAGE", "PRACK", "UPDATE", "REFER":
		return method
	}
	return "other"
}

func (m *Metrics) authFailure(err error) {
	reason := "other"
	switch {
	case errors.Is(err, auth.ErrNoToken):
		reason = "missing"
	case errors.Is(err, auth.ErrExpired):
		reason = "expired"
	case errors.Is(err, auth.ErrSignature):
		reason = "signature"
	case errors.Is(err, auth.ErrMalformed):
		reason = "malformed"
	case errors.Is(err, auth.ErrClaims), errors.Is(err, auth.ErrNotYet):
		reason = "claims"
	}
	m.authFailures.WithLabelValues(reason).Inc()
}

func (m *Metrics) malformed() { m.malformedMsgs.Inc() }

// feedObserver feeds the state-feed metrics (feed.Observer).
type feedObserver struct{ m *Metrics }

func (o feedObserver) ClientOpened() { o.m.feedClients.Inc() }
func (o feedObserver) ClientClosed(reason string) {
	o.m.feedClients.Dec()
	o.m.feedCloses.WithLabelValues(reason).Inc()
}
func (o feedObserver) EventSent(bytes int) {
	o.m.feedEvents.Inc()
	o.m.feedBytes.Add(float64(bytes))
}
func (o feedObserver) SnapshotSent(reason string, bytes int) {
	o.m.feedSnapshots.WithLabelValues(reason).Inc()
	o.m.feedBytes.Add(float64(bytes))
}
func (o feedObserver) Dropped() { o.m.feedDrops.Inc() }

func (m *Metrics) limitHit(limit string) { m.limited.WithLabelValues(limit).Inc() }

// LimitHit counts a request or connection refused by the limit named (for
// limits enforced outside the Server, such as HTTPGuard's).
func (m *Metrics) LimitHit(limit string) { m.limitHit(limit) }

func (m *Metrics) stateChanged(c compositor.Change) {
	m.stateChanges.WithLabelValues(c.View.Event).Inc()
	m.lat.changedState(c.View.Resource, c.View.Event)
}

// NotifySent implements notifier.Observer.
func (m *Metrics) NotifySent(event string, rtt time.Duration) {
	m.notifyCounter(event, "sent").Inc()
	m.notifyRTT.Observe(rtt.Seconds())
}

// NotifyDeduplicated implements notifier.Observer.
func (m *Metrics) NotifyDeduplicated(event string) {
	m.notifyCounter(event, "deduplicated").Inc()
}

type notifyKey struct{ event, result string }

func (m *Metrics) notifyCounter(event, result string) prometheus.Counter {
	key := notifyKey{event, result}
	if c, ok := m.notifyCounters.Load(key); ok {
		return c.(prometheus.Counter)
	}
	c := m.notifies.WithLabelValues(event, result)
	m.notifyCounters.Store(key, c)
	return c
}

// NotifyFailed implements notifier.Observer.
func (m *Metrics) NotifyFailed(event, reason string) {
	m.notifyFailed.WithLabelValues(event, reason).Inc()
}

// SubscriptionsChanged implements notifier.Observer.
func (m *Metrics) SubscriptionsChanged(event string, delta int) {
	m.subs.WithLabelValues(event).Add(float64(delta))
}

// PUBLISH→NOTIFY latency. A PUBLISH's arrival is remembered per (resource,
// event); the compositor's change for that resource moves it to "changed";
// the first NOTIFY (not a subscription's first one) written for that
// resource and event observes the time since the PUBLISH arrived. The
// latest PUBLISH wins when several coalesce into one NOTIFY; entries nobody
// picks up (no watcher, unchanged state) are dropped after latencyMaxAge.

const latencyMaxAge = 30 * time.Second

type latencyKey struct{ resource, event string }

type latencyTracker struct {
	mu      sync.Mutex
	arrived map[latencyKey]time.Time // PUBLISH in progress, change not seen yet
	changed map[latencyKey]time.Time // change seen, no NOTIFY written yet
	pending atomic.Int32             // len(changed): NOTIFYs are only looked up while > 0
}

// publishStarted records a PUBLISH that may change (resource, event).
func (m *Metrics) publishStarted(resource, event string, at time.Time) {
	t := &m.lat
	t.mu.Lock()
	t.arrived[latencyKey{resource, event}] = at
	t.sweepLocked(at)
	t.mu.Unlock()
}

// publishFailed forgets a PUBLISH that changed nothing.
func (m *Metrics) publishFailed(resource, event string, at time.Time) {
	t := &m.lat
	k := latencyKey{resource, event}
	t.mu.Lock()
	if t.arrived[k].Equal(at) {
		delete(t.arrived, k)
	}
	t.mu.Unlock()
}

func (t *latencyTracker) changedState(resource, event string) {
	k := latencyKey{resource, event}
	t.mu.Lock()
	if at, ok := t.arrived[k]; ok {
		delete(t.arrived, k)
		t.changed[k] = at
		t.pending.Store(int32(len(t.changed)))
	}
	t.mu.Unlock()
}

// sweepLocked drops entries nobody picked up, when the maps grow.
func (t *latencyTracker) sweepLocked(now time.Time) {
	if len(t.arrived)+len(t.changed) < 256 {
		return
	}
	for _, m := range []map[latencyKey]time.Time{t.arrived, t.changed} {
		for k, at := range m {
			if now.Sub(at) > latencyMaxAge {
				delete(m, k)
			}
		}
	}
	t.pending.Store(int32(len(t.changed)))
}

// NotifyWritten implements notifier.Observer: the first NOTIFY of
// (resource, event) after its change observes the time since the PUBLISH.
func (m *Metrics) NotifyWritten(resource, event string) {
	t := &m.lat
	if t.pending.Load() == 0 {
		return
	}
	k := latencyKey{resource, event}
	t.mu.Lock()
	at, found := t.changed[k]
	if found {
		delete(t.changed, k)
		t.pending.Store(int32(len(t.changed)))
	}
	t.mu.Unlock()
	if found {
		if d := time.Since(at); d <= latencyMaxAge {
			m.pubLatency.Observe(d.Seconds())
		}
	}
}

// meteredStore times every store operation the hub calls and counts its
// failures. The change feed and the store's own expiry are not wrapped.
type meteredStore struct {
	store.Store
	m *Metrics
}

func (m *Metrics) instrumentStore(st store.Store) store.Store {
	if ix, ok := st.(store.Indexed); ok {
		return meteredIndexed{meteredStore{st, m}, ix}
	}
	return meteredStore{st, m}
}

func (s meteredStore) observe(op string, start time.Time, err error) {
	s.m.storeLatency.WithLabelValues(op).Observe(time.Since(start).Seconds())
	if err != nil && !errors.Is(err, store.ErrNotFound) && !errors.Is(err, store.ErrConflict) &&
		!errors.Is(err, context.Canceled) {
		s.m.storeErrors.WithLabelValues(op).Inc()
	}
}

func (s meteredStore) Get(ctx context.Context, id string) (store.Publication, error) {
	start := time.Now()
	p, err := s.Store.Get(ctx, id)
	s.observe("get", start, err)
	return p, err
}

func (s meteredStore) FindByETag(ctx context.Context, resource, etag string) (store.Publication, error) {
	start := time.Now()
	p, err := s.Store.FindByETag(ctx, resource, etag)
	s.observe("find", start, err)
	return p, err
}

func (s meteredStore) List(ctx context.Context, resource string) ([]store.Publication, error) {
	start := time.Now()
	ps, err := s.Store.List(ctx, resource)
	s.observe("list", start, err)
	return ps, err
}

func (s meteredStore) Create(ctx context.Context, p store.Publication) (store.Publication, error) {
	start := time.Now()
	p, err := s.Store.Create(ctx, p)
	s.observe("create", start, err)
	return p, err
}

func (s meteredStore) Replace(ctx context.Context, p store.Publication, ifRev uint64) (store.Publication, error) {
	start := time.Now()
	p, err := s.Store.Replace(ctx, p, ifRev)
	s.observe("replace", start, err)
	return p, err
}

func (s meteredStore) Delete(ctx context.Context, id string, ifRev uint64) (uint64, error) {
	start := time.Now()
	rev, err := s.Store.Delete(ctx, id, ifRev)
	s.observe("delete", start, err)
	return rev, err
}

func (s meteredStore) DeleteAll(ctx context.Context) error {
	start := time.Now()
	err := s.Store.DeleteAll(ctx)
	s.observe("delete_all", start, err)
	return err
}

func (s meteredStore) Ping(ctx context.Context) error {
	start := time.Now()
	err := s.Store.Ping(ctx)
	s.observe("ping", start, err)
	return err
}

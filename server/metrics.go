package server

import (
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/coder/websocket"
	"github.com/presencehub/presencehub/compositor"
	"github.com/presencehub/presencehub/server/auth"
	"github.com/presencehub/presencehub/wsproto"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics are the hub's Prometheus metrics (no per-user labels). It
// implements notifier.Observer.
type Metrics struct {
	reg *prometheus.Registry

	connections   prometheus.Gauge
	closes        *prometheus.CounterVec
	responses     *prometheus.CounterVec
	notifies      *prometheus.CounterVec
	notifyFailed  *prometheus.CounterVec
	notifyRTT     prometheus.Histogram
	authFailures  *prometheus.CounterVec
	malformedMsgs prometheus.Counter
	limited       *prometheus.CounterVec
	subs          *prometheus.GaugeVec
	stateChanges  *prometheus.CounterVec
}

// NewMetrics registers the hub's metrics and the Go runtime collectors on
// reg (a new registry when nil).
func NewMetrics(reg *prometheus.Registry) *Metrics {
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	m := &Metrics{
		reg: reg,
		connections: prometheus.NewGauge(prometheus.GaugeOpts{Name: "presencehub_connections",
			Help: "Open SIP-over-WebSocket connections."}),
		closes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "presencehub_connections_closed_total",
			Help: "Closed connections by reason."}, []string{"reason"}),
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
	}
	reg.MustRegister(m.connections, m.closes, m.responses, m.notifies, m.notifyFailed, m.notifyRTT,
		m.authFailures, m.malformedMsgs, m.limited, m.subs, m.stateChanges,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Handler serves the metrics in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// bind adds the gauges that are read from the running server at scrape time.
func (m *Metrics) bind(s *Server) {
	m.reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "presencehub_registrations",
			Help: "Live REGISTER bindings."}, func() float64 { return float64(s.registrar.Count()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "presencehub_write_queue_messages",
			Help: "Messages waiting in all connections' write queues."}, func() float64 {
			s.mu.Lock()
			defer s.mu.Unlock()
			n := 0
			for c := range s.conns {
				n += c.QueueLen()
			}
			return float64(n)
		}),
	)
}

func (m *Metrics) connOpened() { m.connections.Inc() }

func (m *Metrics) connClosed(err error) {
	m.connections.Dec()
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
	m.responses.WithLabelValues(method, strconv.Itoa(code)).Inc()
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

func (m *Metrics) malformed()            { m.malformedMsgs.Inc() }
func (m *Metrics) limitHit(limit string) { m.limited.WithLabelValues(limit).Inc() }

func (m *Metrics) stateChanged(c compositor.Change) {
	m.stateChanges.WithLabelValues(c.View.Event).Inc()
}

// NotifySent implements notifier.Observer.
func (m *Metrics) NotifySent(event string, rtt time.Duration) {
	m.notifies.WithLabelValues(event, "sent").Inc()
	m.notifyRTT.Observe(rtt.Seconds())
}

// NotifyDeduplicated implements notifier.Observer.
func (m *Metrics) NotifyDeduplicated(event string) {
	m.notifies.WithLabelValues(event, "deduplicated").Inc()
}

// NotifyFailed implements notifier.Observer.
func (m *Metrics) NotifyFailed(event, reason string) {
	m.notifyFailed.WithLabelValues(event, reason).Inc()
}

// SubscriptionsChanged implements notifier.Observer.
func (m *Metrics) SubscriptionsChanged(event string, delta int) {
	m.subs.WithLabelValues(event).Add(float64(delta))
}

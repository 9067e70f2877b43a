package notifier

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/presencehub/presencehub/compositor"
	"github.com/presencehub/presencehub/internal/siprule"
	"github.com/presencehub/presencehub/server/flow"
)

// Views is where composed state comes from (the compositor).
type Views interface {
	View(resource, event string) compositor.View
}

// Observer is told what the notifier does (metrics). All methods must be cheap.
type Observer interface {
	// NotifyWritten: a NOTIFY of resource's state is being written to its
	// subscriber; a subscription's first NOTIFY, which answers its
	// SUBSCRIBE, is not reported.
	NotifyWritten(resource, event string)
	NotifySent(event string, roundTrip time.Duration)
	NotifyDeduplicated(event string)
	NotifyFailed(event, reason string)
	SubscriptionsChanged(event string, delta int)
}

type nopObserver struct{}

func (nopObserver) NotifyWritten(string, string)     {}
func (nopObserver) NotifySent(string, time.Duration) {}
func (nopObserver) NotifyDeduplicated(string)        {}
func (nopObserver) NotifyFailed(string, string)      {}
func (nopObserver) SubscriptionsChanged(string, int) {}

// DefaultExpiry is the subscription policy for fields left zero in
// Config.Expiry: 3600 s when the subscriber asks for none, 60 s minimum,
// 7200 s maximum (RFC 6665 §4.2.1.1).
var DefaultExpiry = siprule.ExpiryPolicy{Default: 3600 * time.Second, Min: 60 * time.Second, Max: 7200 * time.Second}

// Config configures a Notifier.
type Config struct {
	Views     Views
	Providers *Registry
	// Expiry per event package; missing packages and zero fields take
	// DefaultExpiry.
	Expiry map[string]siprule.ExpiryPolicy
	// Contact is the hub's Contact header value, e.g. <sip:hub@example.com;transport=ws>.
	Contact string
	// ViaHost and ViaTransport make the Via of NOTIFYs (e.g. "example.com", "WS").
	ViaHost      string
	ViaTransport string
	// RebindGrace is how long a subscription whose flow closed waits for its
	// client to come back on another flow. Default 32 s.
	RebindGrace time.Duration
	// AdoptDialogs takes over a subscription dialog this hub does not know
	// when its subscriber refreshes it (an in-dialog SUBSCRIBE), instead of
	// answering 481: with several hubs sharing one store, a client whose
	// hub died reconnects to another one and its subscriptions continue.
	// CSeq and version of an adopted dialog start above anything the old
	// hub can have sent (see adoptBase).
	AdoptDialogs bool
	// MaxPerFlow and MaxPerWatcher limit subscriptions (0: 1000 and 5000).
	MaxPerFlow, MaxPerWatcher int
	// Domain is the hub's SIP domain: stored lists are sip:<name>@Domain,
	// request-contained lists go to sip:rls@Domain. Default ViaHost.
	Domain string
	// ListBatch is the batching window of list subscriptions: changes within
	// it leave in one NOTIFY. 0: DefaultListBatch; negative: no batching.
	ListBatch time.Duration
	// MaxListMembers limits the members of one list (0: DefaultMaxListMembers).
	MaxListMembers int
	Observer       Observer
	Logger         *slog.Logger
}

// Notifier holds every subscription of this hub.
type Notifier struct {
	cfg Config
	obs Observer
	log *slog.Logger

	mu      sync.RWMutex
	dialogs map[dialogKey]*subscription
	// byResource holds a resource's subscriptions in a slice, each knowing
	// its position (subscription.resAt): one map entry per watched
	// resource instead of a map per resource.
	byResource map[resourceKey][]*subscription
	byFlow     map[uint64]map[*subscription]struct{}
	byWatcher  map[string]int
	// mine indexes subscriptions by watcher and resource, so a re-SUBSCRIBE
	// finds its predecessors without scanning every watcher of the resource
	// (nearly always one).
	mine     map[watcherKey][]*subscription
	expiry   expiryQueue
	draining bool
	// Resource lists (list.go): stored lists by name, list subscriptions
	// by member resource and by stored list name.
	lists    map[string]List
	byMember map[resourceKey]map[*subscription]struct{}
	byList   map[string]map[*subscription]struct{}

	// fanSubs is Run's scratch copy of one resource's subscriptions.
	fanSubs []*subscription
	// bufs holds written NOTIFYs' memory; recycle (bufs.put) is handed to
	// the flows with each NOTIFY.
	bufs    bufPool
	recycle func([]byte)
	// epoch starts clock.
	epoch time.Time

	chMu    sync.Mutex
	changed map[resourceKey]compositor.View // newest view per resource, not yet fanned out
	order   []resourceKey
	wake    chan struct{}
}

// New returns a Notifier; Run must be running for state changes to reach subscribers.
func New(cfg Config) *Notifier {
	if cfg.Providers == nil {
		cfg.Providers = &Registry{}
	}
	if cfg.RebindGrace == 0 {
		cfg.RebindGrace = 32 * time.Second
	}
	if cfg.ViaTransport == "" {
		cfg.ViaTransport = "WS"
	}
	if cfg.ViaHost == "" {
		cfg.ViaHost = "presencehub.invalid"
	}
	if cfg.MaxPerFlow == 0 {
		cfg.MaxPerFlow = 1000
	}
	if cfg.MaxPerWatcher == 0 {
		cfg.MaxPerWatcher = 5000
	}
	if cfg.Domain == "" {
		cfg.Domain = cfg.ViaHost
	}
	if cfg.ListBatch == 0 {
		cfg.ListBatch = DefaultListBatch
	}
	if cfg.MaxListMembers == 0 {
		cfg.MaxListMembers = DefaultMaxListMembers
	}
	n := &Notifier{
		cfg:        cfg,
		obs:        cfg.Observer,
		log:        cfg.Logger,
		dialogs:    make(map[dialogKey]*subscription),
		byResource: make(map[resourceKey][]*subscription),
		byFlow:     make(map[uint64]map[*subscription]struct{}),
		byWatcher:  make(map[string]int),
		mine:       make(map[watcherKey][]*subscription),
		lists:      make(map[string]List),
		byMember:   make(map[resourceKey]map[*subscription]struct{}),
		byList:     make(map[string]map[*subscription]struct{}),
		changed:    make(map[resourceKey]compositor.View),
		wake:       make(chan struct{}, 1),
	}
	n.recycle = n.bufs.put
	n.epoch = time.Now()
	if n.obs == nil {
		n.obs = nopObserver{}
	}
	if n.log == nil {
		n.log = slog.New(slog.DiscardHandler)
	}
	return n
}

// clock is the monotonic time since New, for the instants a subscription
// keeps (8 bytes instead of a time.Time's 24).
func (n *Notifier) clock() int64 { return int64(time.Since(n.epoch)) }

// Providers is the provider registry.
func (n *Notifier) Providers() *Registry { return n.cfg.Providers }

func (n *Notifier) policy(event string) siprule.ExpiryPolicy {
	return n.cfg.Expiry[event].Or(DefaultExpiry)
}

// OnChange takes a composed-view change (compositor.Subscribe callback). It
// never blocks: changes are coalesced per resource and fanned out by Run.
func (n *Notifier) OnChange(c compositor.Change) {
	k := resourceKey{c.View.Resource, c.View.Event}
	n.chMu.Lock()
	if _, ok := n.changed[k]; !ok {
		n.order = append(n.order, k)
	}
	n.changed[k] = c.View
	n.chMu.Unlock()
	select {
	case n.wake <- struct{}{}:
	default:
	}
}

// Run fans changes out to subscribers until ctx ends.
func (n *Notifier) Run(ctx context.Context) {
	// The maps and slices of one round are kept for the round after next
	// (OnChange fills the other pair meanwhile): steady changes allocate
	// no map per round.
	spareOrder, spareChanged := []resourceKey(nil), make(map[resourceKey]compositor.View)
	// The NOTIFYs of one round wait in their flows' queues until the round
	// ends: a socket gets one write(2) per round, not one per NOTIFY.
	var r round
	defer r.release()
	for {
		select {
		case <-ctx.Done():
			return
		case <-n.wake:
		}
		for {
			n.chMu.Lock()
			order, changed := n.order, n.changed
			if len(order) == 0 {
				n.chMu.Unlock()
				break
			}
			n.order, n.changed = spareOrder[:0], spareChanged
			n.chMu.Unlock()
			for i, k := range order {
				n.fanOutIn(changed[k], &r)
				if (i+1)%maxRound == 0 || r.full() {
					r.release()
				}
			}
			r.release()
			if len(order) > maxKeptRound {
				// A burst is over: do not keep its memory.
				spareOrder, spareChanged = nil, make(map[resourceKey]compositor.View)
				continue
			}
			clear(order) // no views pinned until the next round
			clear(changed)
			spareOrder, spareChanged = order, changed
		}
	}
}

// maxRound is the most changes fanned out while their NOTIFYs are held
// back (round.go): a burst is written in slices of it.
const maxRound = 256

// maxRoundNotifies is the most NOTIFYs held back at once: a round that
// made this many is released after the change that reached it.
const maxRoundNotifies = 256

// maxKeptRound is the most changes of one round whose map and slice Run
// keeps for reuse.
const maxKeptRound = 4096

type watcherKey struct {
	watcher string
	res     resourceKey
}

type renderKey struct {
	p       *Provider
	variant string
}

// renderings is one change's bodies by (provider, variant), shared by the
// subscriptions they were rendered for: a few, looked up in order, on the
// stack (a change of one resource meets one or two providers' variants).
type renderings[T any] struct {
	keys [8]renderKey
	vals [8]T
	n    int
}

func (r *renderings[T]) get(k renderKey) (T, bool) {
	for i := range r.n {
		if r.keys[i] == k {
			return r.vals[i], true
		}
	}
	var zero T
	return zero, false
}

// put keeps v unless full (then k is rendered again when met again).
func (r *renderings[T]) put(k renderKey, v T) {
	if r.n < len(r.keys) {
		r.keys[r.n], r.vals[r.n] = k, v
		r.n++
	}
}

// fanOut renders the view once per (provider, variant) and offers it to every
// subscription of the resource. No notifier lock is held while offering.
// It runs on Run's goroutine only (it reuses n.fanSubs).
func (n *Notifier) fanOut(v compositor.View) { n.fanOutIn(v, nil) }

// fanOutIn is fanOut with the NOTIFYs held until r is released (nil r:
// sent at once).
func (n *Notifier) fanOutIn(v compositor.View, r *round) {
	k := resourceKey{v.Resource, v.Event}
	n.mu.RLock()
	subs := append(n.fanSubs[:0], n.byResource[k]...)
	n.mu.RUnlock()
	var cache renderings[*Body]
	for _, s := range subs {
		rk := renderKey{s.provider, s.variant}
		body, ok := cache.get(rk)
		if !ok {
			b, err := s.provider.Render(v, s.variant)
			if err != nil {
				n.log.Error("render NOTIFY body", "provider", s.provider.Name, "resource", v.Resource, "err", err)
				continue
			}
			body = &b
			cache.put(rk, body)
		}
		s.offer(v.Rev, body, false, r)
	}
	n.keepFanSubs(subs)
	n.fanOutLists(v)
}

// keepFanSubs keeps subs's memory for the next fan-out, without pinning
// the subscriptions in it.
func (n *Notifier) keepFanSubs(subs []*subscription) {
	clear(subs)
	if cap(subs) > maxKeptRound {
		subs = nil
	}
	n.fanSubs = subs[:0]
}

// add indexes a new subscription; false when a limit refuses it.
func (n *Notifier) add(s *subscription, fl *flow.Flow, members []memberSpec) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.draining || len(n.byFlow[fl.ID()]) >= n.cfg.MaxPerFlow || n.byWatcher[s.watcher] >= n.cfg.MaxPerWatcher {
		return false
	}
	n.dialogs[s.key] = s
	if s.list != nil {
		// A list is indexed by its members, never by its own URI.
		n.indexListLocked(s, members)
	} else {
		set := n.byResource[s.res]
		s.resAt = int32(len(set))
		n.byResource[s.res] = append(set, s)
	}
	n.attachLocked(s, fl)
	wk := watcherKey{s.watcher, s.res}
	n.mine[wk] = append(n.mine[wk], s)
	n.byWatcher[s.watcher]++
	n.obs.SubscriptionsChanged(s.res.event, 1)
	return true
}

func (n *Notifier) attachLocked(s *subscription, fl *flow.Flow) {
	fs := n.byFlow[fl.ID()]
	if fs == nil {
		fs = make(map[*subscription]struct{})
		n.byFlow[fl.ID()] = fs
		id := fl.ID()
		fl.OnClose(func() { n.flowClosed(id) })
	}
	fs[s] = struct{}{}
}

// remove ends a subscription for good.
func (n *Notifier) remove(s *subscription) {
	s.mu.Lock()
	if s.done {
		s.mu.Unlock()
		return
	}
	s.done = true
	n.expiry.cancel(s)
	fl := s.flow
	s.mu.Unlock()
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.dialogs[s.key] == s {
		delete(n.dialogs, s.key)
	}
	if s.list != nil {
		n.unindexListLocked(s)
	}
	if set := n.byResource[s.res]; s.list == nil && int(s.resAt) < len(set) && set[s.resAt] == s {
		last := len(set) - 1
		set[s.resAt] = set[last]
		set[s.resAt].resAt = s.resAt
		set[last] = nil
		if last == 0 {
			delete(n.byResource, s.res)
		} else {
			n.byResource[s.res] = set[:last]
		}
	}
	if fl != nil {
		if fs := n.byFlow[fl.ID()]; fs != nil {
			delete(fs, s)
		}
	}
	wk := watcherKey{s.watcher, s.res}
	if m := n.mine[wk]; m != nil {
		if i := slices.Index(m, s); i >= 0 {
			m = slices.Delete(m, i, i+1)
		}
		if len(m) == 0 {
			delete(n.mine, wk)
		} else {
			n.mine[wk] = m
		}
	}
	if n.byWatcher[s.watcher]--; n.byWatcher[s.watcher] <= 0 {
		delete(n.byWatcher, s.watcher)
	}
	n.obs.SubscriptionsChanged(s.res.event, -1)
}

// flowClosed detaches the flow's subscriptions; those not rebound within the
// grace period end without a final NOTIFY (there is no socket to send it on).
func (n *Notifier) flowClosed(id uint64) {
	n.mu.Lock()
	fs := n.byFlow[id]
	delete(n.byFlow, id)
	n.mu.Unlock()
	if len(fs) == 0 {
		return
	}
	now := n.clock()
	for s := range fs {
		s.mu.Lock()
		if s.flow != nil && s.flow.ID() == id {
			s.flow = nil
			s.detached = now
		}
		s.mu.Unlock()
	}
	time.AfterFunc(n.cfg.RebindGrace, func() {
		for s := range fs {
			s.mu.Lock()
			stale := s.flow == nil && s.detached <= now
			s.mu.Unlock()
			if stale {
				n.remove(s)
			}
		}
	})
}

// rebind moves a detached (or other-flow) subscription of the same watcher to fl.
func (n *Notifier) rebind(s *subscription, fl *flow.Flow) sendOp {
	n.mu.Lock()
	if old := s.flowSnapshot(); old != nil && old.ID() != fl.ID() {
		if fs := n.byFlow[old.ID()]; fs != nil {
			delete(fs, s)
		}
	}
	n.attachLocked(s, fl)
	n.mu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.flow != nil && s.flow.ID() == fl.ID() {
		return sendOp{}
	}
	s.flow = fl
	if !s.inFlight {
		return s.transmitNextLocked()
	}
	return sendOp{}
}

func (s *subscription) flowSnapshot() *flow.Flow {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.flow
}

// Count is the number of subscriptions per event (metrics, admin API).
func (n *Notifier) Count() map[string]int {
	n.mu.RLock()
	defer n.mu.RUnlock()
	out := make(map[string]int)
	for _, s := range n.dialogs {
		out[s.res.event]++
	}
	return out
}

// Info describes a subscription for the admin API.
type Info struct {
	ID       string    `json:"id"`
	Resource string    `json:"resource"`
	Event    string    `json:"event"`
	Watcher  string    `json:"watcher"`
	Expires  time.Time `json:"expires"`
	Attached bool      `json:"attached"`
}

// List returns the subscriptions, optionally only those of one watcher.
func (n *Notifier) List(watcher string) []Info {
	n.mu.RLock()
	subs := make([]*subscription, 0, len(n.dialogs))
	for _, s := range n.dialogs {
		if watcher == "" || s.watcher == watcher {
			subs = append(subs, s)
		}
	}
	n.mu.RUnlock()
	out := make([]Info, 0, len(subs))
	for _, s := range subs {
		s.mu.Lock()
		out = append(out, Info{ID: s.id(), Resource: s.res.resource, Event: s.res.event, Watcher: s.watcher, Expires: s.expires, Attached: s.flow != nil})
		s.mu.Unlock()
	}
	return out
}

func (s *subscription) id() string { return s.key.callID + ";" + s.key.localTag }

// End terminates the subscription with the given id (admin API).
func (n *Notifier) End(id, reason string) bool {
	n.mu.RLock()
	var found *subscription
	for _, s := range n.dialogs {
		if s.id() == id {
			found = s
			break
		}
	}
	n.mu.RUnlock()
	if found == nil {
		return false
	}
	found.terminate(reason)
	return true
}

// Shutdown sends every subscriber a final NOTIFY with reason deactivated
// (RFC 6665 §4.1.3: it may re-subscribe at once) and waits until they are
// answered or ctx ends. New subscriptions are refused from now on.
func (n *Notifier) Shutdown(ctx context.Context) error {
	n.mu.Lock()
	n.draining = true
	subs := make([]*subscription, 0, len(n.dialogs))
	for _, s := range n.dialogs {
		subs = append(subs, s)
	}
	n.mu.Unlock()
	for _, s := range subs {
		s.terminate(ReasonDeactivated)
	}
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for {
		n.mu.RLock()
		left := 0
		for _, s := range n.dialogs {
			if s.flowSnapshot() != nil {
				left++
			}
		}
		n.mu.RUnlock()
		if left == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

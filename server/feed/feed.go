package feed

import (
	"bytes"
	"errors"
	"sync"
	"time"

	"github.com/presencehub/presencehub/compositor"
)

// Views is where the composed state comes from: the compositor. View may
// read the store the first time a resource is asked for (lazy cache).
type Views interface {
	View(resource, event string) compositor.View
}

// Observer is told what the feed does (the hub's metrics). Its methods are
// called with the feed's lock held or from a client's goroutine: they must
// not block.
type Observer interface {
	ClientOpened()
	ClientClosed(reason string)            // client_gone, token_expired, shutdown, write_error
	EventSent(bytes int)                   // one state event written
	SnapshotSent(reason string, bytes int) // initial, resume_gap, slow_client
	Dropped()                              // a client's queue was full: it will get a fresh snapshot
}

type nopObserver struct{}

func (nopObserver) ClientOpened()            {}
func (nopObserver) ClientClosed(string)      {}
func (nopObserver) EventSent(int)            {}
func (nopObserver) SnapshotSent(string, int) {}
func (nopObserver) Dropped()                 {}

// Defaults for Config fields left zero.
const (
	DefaultReplay       = 4096
	DefaultQueue        = 256
	DefaultKeepalive    = 15 * time.Second
	DefaultWriteTimeout = 10 * time.Second
	DefaultLinger       = 2 * time.Minute
	DefaultRetry        = 2 * time.Second
)

// Config configures New. Only Views is required.
type Config struct {
	Views Views
	// Replay is how many state events are kept for Last-Event-ID; a client
	// that was away longer gets a fresh snapshot. Default 4096.
	Replay int
	// Queue is how many events may wait for one client; a client whose
	// queue is full gets a fresh snapshot instead. Default 256.
	Queue int
	// Keepalive is the period of ": keepalive" comments. Default 15 s.
	Keepalive time.Duration
	// WriteTimeout closes a stream whose write does not finish within it.
	// Default 10 s.
	WriteTimeout time.Duration
	// Linger is how long a resource nobody watches any more is still
	// followed, so a client that reconnects within it resumes without a
	// snapshot. Default 2 min.
	Linger time.Duration
	// Retry is the reconnection delay sent to EventSource (the SSE retry
	// field). Default 2 s.
	Retry    time.Duration
	Observer Observer
	Now      func() time.Time
}

// Feed turns composed views into state events for its clients. Its
// methods are safe for concurrent use.
type Feed struct {
	cfg Config
	obs Observer

	mu    sync.Mutex
	seq   uint64 // the newest event id
	floor uint64 // the replay buffer holds every event with id > floor
	ring  []*entry
	head  int // index of the oldest entry in ring
	n     int // entries in ring
	res   map[string]*resource
	swept time.Time
}

// resource is one followed resource: its views, their JSON per Packages,
// and its clients.
type resource struct {
	aor, ext string
	dialog   compositor.View
	presView compositor.View
	msgView  compositor.View
	pres     Status
	docs     [all + 1][]byte      // the JSON clients of each Packages were last sent (nil: not rendered)
	starts   map[string]time.Time // dialog id → the hub's stamp (dialoginfo.Dialog.Since), else when first seen
	// since[pk] is the event id from which changes for Packages pk are
	// rendered (when its first client came): a Last-Event-ID below it
	// missed changes. Only the package sets some client asked for are
	// rendered, from then on while the resource is followed.
	since   [all + 1]uint64
	clients map[*client]struct{}
	idleAt  time.Time // when its last client left
}

// entry is one state event: the resource's JSON for each Packages whose
// clients see a change (nil for the others).
type entry struct {
	id   uint64
	aor  string
	docs [all + 1][]byte
}

// New returns a feed. Subscribe its OnChange to the compositor.
func New(cfg Config) (*Feed, error) {
	if cfg.Views == nil {
		return nil, errors.New("feed: Config.Views is required")
	}
	if cfg.Replay <= 0 {
		cfg.Replay = DefaultReplay
	}
	if cfg.Queue <= 0 {
		cfg.Queue = DefaultQueue
	}
	if cfg.Keepalive <= 0 {
		cfg.Keepalive = DefaultKeepalive
	}
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = DefaultWriteTimeout
	}
	if cfg.Linger <= 0 {
		cfg.Linger = DefaultLinger
	}
	if cfg.Retry <= 0 {
		cfg.Retry = DefaultRetry
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	obs := cfg.Observer
	if obs == nil {
		obs = nopObserver{}
	}
	// Ids start at the start time in microseconds: a Last-Event-ID from an
	// earlier run of the hub is below every id of this one, so it gets a
	// snapshot rather than a wrong replay.
	start := uint64(cfg.Now().UnixMicro())
	return &Feed{cfg: cfg, obs: obs, seq: start, floor: start, ring: make([]*entry, cfg.Replay),
		res: map[string]*resource{}, swept: cfg.Now()}, nil
}

// OnChange takes a changed view from the compositor's change feed (the one
// the notifier follows). It never blocks: clients that cannot take the
// event at once are marked for a fresh snapshot.
func (f *Feed) OnChange(ch compositor.Change) {
	v := ch.View
	f.mu.Lock()
	defer f.mu.Unlock()
	r := f.res[v.Resource]
	if r == nil {
		return // nobody follows it
	}
	if v.Rev < r.viewOf(v.Event).Rev {
		return // older than what a client's snapshot read (a PUBLISH's own write reaches the cache first)
	}
	r.set(v, f.cfg.Now())
	f.updateLocked(r)
}

// set records a view of r.
func (r *resource) set(v compositor.View, now time.Time) {
	switch v.Event {
	case compositor.EventDialog:
		seen := make(map[string]time.Time, len(v.Dialogs))
		for _, d := range v.Dialogs {
			t, ok := d.Since, !d.Since.IsZero()
			if !ok {
				t, ok = r.starts[d.ID] // a publication stored before the hub stamped dialogs
			}
			if !ok {
				t = now.UTC().Truncate(time.Millisecond)
			}
			seen[d.ID] = t
		}
		r.dialog, r.starts = v, seen
	case compositor.EventPresence:
		r.presView, r.pres = v, ReadPresence(v.Presence)
	case compositor.EventMessageSummary:
		r.msgView = v
	}
}

// updateLocked renders r for every Packages and, when any JSON changed,
// makes it the next event: into the replay buffer and every client's queue
// whose JSON changed (the same state twice is one event).
func (f *Feed) updateLocked(r *resource) {
	e := &entry{aor: r.aor}
	changed := false
	for pk := Dialog; pk <= all; pk++ {
		if r.docs[pk] == nil {
			continue // no client ever asked for this package set
		}
		doc := r.render(pk)
		if !bytes.Equal(doc, r.docs[pk]) {
			r.docs[pk], e.docs[pk] = doc, doc
			changed = true
		}
	}
	if !changed {
		return
	}
	f.seq++
	e.id = f.seq
	f.pushLocked(e)
	for c := range r.clients {
		if e.docs[c.pk] == nil || c.resync {
			continue
		}
		select {
		case c.queue <- e:
		default:
			c.resync = true
			f.obs.Dropped()
			select {
			case c.wake <- struct{}{}:
			default:
			}
		}
	}
}

// pushLocked appends e to the replay buffer, forgetting the oldest event
// when it is full.
func (f *Feed) pushLocked(e *entry) {
	if f.n == len(f.ring) {
		f.floor = f.ring[f.head].id
		f.ring[f.head] = nil
		f.head = (f.head + 1) % len(f.ring)
		f.n--
	}
	f.ring[(f.head+f.n)%len(f.ring)] = e
	f.n++
}

// followLocked returns the followed resource aor, following it from now
// on when nobody did (its views are in memory: the caller asked Views
// before taking the lock), and rendering it for pk from now on.
func (f *Feed) followLocked(aor, ext string, pk Packages) *resource {
	r := f.res[aor]
	if r == nil {
		now := f.cfg.Now()
		r = &resource{aor: aor, ext: ext, clients: map[*client]struct{}{}}
		r.set(f.cfg.Views.View(aor, compositor.EventDialog), now)
		r.set(f.cfg.Views.View(aor, compositor.EventPresence), now)
		r.set(f.cfg.Views.View(aor, compositor.EventMessageSummary), now)
		f.res[aor] = r
	}
	if r.docs[pk] == nil {
		f.seq++ // rendering for pk begins: a Last-Event-ID below this missed its changes
		r.since[pk] = f.seq
		r.docs[pk] = r.render(pk)
	}
	return r
}

// sweepLocked stops following resources nobody has watched for Linger.
func (f *Feed) sweepLocked(now time.Time) {
	if now.Sub(f.swept) < time.Second {
		return
	}
	f.swept = now
	for aor, r := range f.res {
		if len(r.clients) == 0 && now.Sub(r.idleAt) >= f.cfg.Linger {
			delete(f.res, aor)
		}
	}
}

// Followed is the number of resources the feed follows (watched, or
// lingering after their last client left).
func (f *Feed) Followed() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.res)
}

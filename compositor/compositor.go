package compositor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/presencehub/presencehub/compositor/msgsummary"
	"github.com/presencehub/presencehub/compositor/store"
)

// Event packages the compositor accepts.
const (
	EventPresence       = "presence"
	EventDialog         = "dialog"
	EventMessageSummary = "message-summary" // RFC 3842
)

// Content types per event package: the one definition the SIP side (the
// notifier's providers, Accept) uses too.
const (
	ContentTypePIDF       = "application/pidf+xml"
	ContentTypeDialogInfo = "application/dialog-info+xml"
	// ContentTypeMessageSummary is RFC 3842's simple-message-summary.
	ContentTypeMessageSummary = msgsummary.ContentType
)

// Defaults for Config fields left zero.
const (
	DefaultMaxBodySize  = 64 << 10
	DefaultMaxDepth     = 32
	DefaultTombstoneTTL = 60 * time.Second

	DefaultMaxPublicationsPerResource = 100
	DefaultMaxDialogsPerResource      = 1000
	defaultRetryAfter                 = 5 // seconds, on 503
)

// Store is where publications live; see package store.
type Store = store.Store

// Publication is one stored publication; see package store.
type Publication = store.Publication

// ErrNotFound is returned by Find and Remove for an unknown entity-tag.
var ErrNotFound = store.ErrNotFound

// Config configures New. Only Store is required.
type Config struct {
	Store  Store // required; the caller closes it after Close
	Logger *slog.Logger
	Now    func() time.Time // clock; default time.Now (must match the store's)

	MaxBodySize  int           // bytes; default 64 KiB (413 above)
	MaxDepth     int           // XML nesting; default 32 (400 above)
	TombstoneTTL time.Duration // how long a terminated dialog id stays terminated; default 60s
	// MaxPerPublisher limits the live publications of one publisher (a
	// token's sub); 0 means no limit. Above it an initial PUBLISH gets 503.
	MaxPerPublisher int
	// MaxPublicationsPerResource bounds the live publications of one
	// (resource, event): an initial PUBLISH above it gets 503. Default 100.
	MaxPublicationsPerResource int
	// MaxDialogsPerResource bounds the dialogs of a resource's dialog
	// publications taken together (what its composed view and NOTIFYs
	// carry): a PUBLISH that would go above it gets 413, one that does not
	// add dialogs is always accepted. Default 1000.
	MaxDialogsPerResource int
}

// Compositor is the Event State Compositor. Its methods are safe for
// concurrent use.
type Compositor struct {
	store      Store
	log        *slog.Logger
	now        func() time.Time
	cache      *cache
	maxPer     int // Config.MaxPerPublisher
	maxPubs    int // Config.MaxPublicationsPerResource
	maxDialogs int // Config.MaxDialogsPerResource

	subMu   sync.Mutex
	subs    map[uint64]func(Change)
	subSeq  uint64
	subList []func(Change) // copy-on-write snapshot for the feed

	feedCtx   context.Context
	cancel    context.CancelFunc
	feedDone  chan struct{}
	closeOnce sync.Once
}

// New loads the live publications from the store (which removed what
// expired while down) and starts the feed goroutine. ctx bounds the loading;
// the feed runs until Close.
func New(ctx context.Context, cfg Config) (*Compositor, error) {
	if cfg.Store == nil {
		return nil, errors.New("compositor: Config.Store is required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.MaxBodySize <= 0 {
		cfg.MaxBodySize = DefaultMaxBodySize
	}
	if cfg.MaxDepth <= 0 {
		cfg.MaxDepth = DefaultMaxDepth
	}
	if cfg.TombstoneTTL <= 0 {
		cfg.TombstoneTTL = DefaultTombstoneTTL
	}
	if cfg.MaxPublicationsPerResource <= 0 {
		cfg.MaxPublicationsPerResource = DefaultMaxPublicationsPerResource
	}
	if cfg.MaxDialogsPerResource <= 0 {
		cfg.MaxDialogsPerResource = DefaultMaxDialogsPerResource
	}
	c := &Compositor{
		store:      cfg.Store,
		log:        cfg.Logger,
		now:        cfg.Now,
		cache:      newCache(cfg),
		maxPer:     cfg.MaxPerPublisher,
		maxPubs:    cfg.MaxPublicationsPerResource,
		maxDialogs: cfg.MaxDialogsPerResource,
		subs:       map[uint64]func(Change){},
		feedDone:   make(chan struct{}),
	}
	feedCtx, cancel := context.WithCancel(context.Background())
	c.feedCtx, c.cancel = feedCtx, cancel
	var changes <-chan store.Change
	var err error
	if ix, ok := cfg.Store.(store.Indexed); ok {
		// Lazy (lazy.go): nothing is loaded now; resources load on first use.
		c.cache.lazy(ix)
		changes, err = ix.Watch(feedCtx)
	} else {
		changes, err = cfg.Store.Changes(feedCtx, 0)
	}
	if err != nil {
		cancel()
		return nil, fmt.Errorf("compositor: watch store: %w", err)
	}
	f := &feed{c: c}
	if err := f.load(ctx, changes); err != nil {
		cancel()
		for range changes { // drain until the pump ends
		}
		return nil, fmt.Errorf("compositor: load: %w", err)
	}
	go f.run(changes)
	return c, nil
}

// Close stops the feed goroutine and waits for it. It does not close the
// store.
func (c *Compositor) Close() error {
	c.closeOnce.Do(func() {
		c.cancel()
		<-c.feedDone
	})
	return nil
}

// Events returns the event packages accepted, sorted.
func (c *Compositor) Events() []string {
	return []string{EventDialog, EventMessageSummary, EventPresence}
}

// AllowEvents is the Allow-Events value for 489 answers.
const allowEvents = EventPresence + ", " + EventDialog + ", " + EventMessageSummary

// ContentType returns the media type of event's state ("" if unknown).
func (c *Compositor) ContentType(event string) string {
	switch event {
	case EventPresence:
		return ContentTypePIDF
	case EventDialog:
		return ContentTypeDialogInfo
	case EventMessageSummary:
		return ContentTypeMessageSummary
	}
	return ""
}

// Ready reports whether the store can serve (for /readyz).
func (c *Compositor) Ready(ctx context.Context) error {
	if err := c.store.Ping(ctx); err != nil {
		return fmt.Errorf("compositor: store: %w", err)
	}
	return nil
}

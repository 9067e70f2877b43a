package store

import (
	"context"
	"errors"
	"time"
)

// Errors every Store returns (wrapped; test with errors.Is).
var (
	// ErrNotFound: no live publication matches (expired counts as absent).
	ErrNotFound = errors.New("store: publication not found")
	// ErrConflict: the compare-and-swap revision did not match, or a
	// publication with the same ID or entity-tag already exists.
	ErrConflict = errors.New("store: revision conflict")
	// ErrBusy: the store cannot take writes right now (locked, read-only,
	// disk full); the caller may retry later (SIP 503 + Retry-After).
	ErrBusy = errors.New("store: busy")
	// ErrClosed: the store was closed.
	ErrClosed = errors.New("store: closed")
)

// Publication is one piece of event state published for a resource
// (RFC 3903 §2: one entity-tag's worth of state).
//
// Body and Meta are read-only once handed to Create or Replace, and in
// every publication a store returns or streams: a store may keep the
// caller's slices and hand the same ones to its readers, its change feed
// and the caller, so nobody copies them.
type Publication struct {
	ID          string    // stable random identifier, never reused
	Resource    string    // AOR "sip:user@domain"
	Event       string    // event package ("presence", "dialog")
	ETag        string    // current SIP-ETag; new on every successful PUBLISH
	Rev         uint64    // revision of the commit that wrote this version (set by the store)
	Expires     time.Time // absolute expiry; the store removes it at that time
	Created     time.Time
	Updated     time.Time // when the body last changed (not on refresh): composition order
	ContentType string
	Body        []byte
	Publisher   string // identity that published (JWT sub)
	// Meta is compositor bookkeeping that must travel with the publication
	// (dialog tombstones for RFC 4235 ordering). Opaque to the store.
	Meta []byte
}

// ChangeKind says what a Change did.
type ChangeKind uint8

const (
	// ChangePut: a publication was created or replaced; Pub is the new version.
	ChangePut ChangeKind = iota + 1
	// ChangeDelete: a publication was removed by Delete or DeleteAll; Pub is
	// the removed version (with its new Rev set to the delete's revision).
	ChangeDelete
	// ChangeExpire: the store expired a publication; Pub as for ChangeDelete.
	ChangeExpire
	// ChangeSynced marks the end of the snapshot: every later change is
	// live. Pub is empty; Rev is the store revision at the snapshot.
	ChangeSynced
)

func (k ChangeKind) String() string {
	switch k {
	case ChangePut:
		return "put"
	case ChangeDelete:
		return "delete"
	case ChangeExpire:
		return "expire"
	case ChangeSynced:
		return "synced"
	}
	return "unknown"
}

// Change is one committed change, as streamed by Store.Changes.
type Change struct {
	Kind ChangeKind
	Rev  uint64
	Pub  Publication
}

// Store keeps publications. All methods are safe for concurrent use.
// Reads never return expired publications, even before the store's
// expiry timer removed them.
type Store interface {
	// Get returns the live publication with this ID.
	Get(ctx context.Context, id string) (Publication, error)
	// FindByETag returns the live publication of resource whose current
	// entity-tag is etag.
	FindByETag(ctx context.Context, resource, etag string) (Publication, error)
	// List returns the live publications of resource ("" = all), in
	// revision order.
	List(ctx context.Context, resource string) ([]Publication, error)

	// Create stores a new publication. p.ID must be unique and p.ETag
	// unique among the publications of p.Resource (ErrConflict otherwise;
	// a store may also refuse an entity-tag used by another resource). It
	// returns p with Rev set.
	Create(ctx context.Context, p Publication) (Publication, error)
	// Replace overwrites the publication p.ID if its current revision is
	// ifRev (ErrConflict otherwise, ErrNotFound if gone). It returns p with
	// the new Rev set.
	Replace(ctx context.Context, p Publication, ifRev uint64) (Publication, error)
	// Delete removes publication id if its current revision is ifRev and
	// returns the revision of the delete.
	Delete(ctx context.Context, id string, ifRev uint64) (uint64, error)
	// DeleteAll removes every publication (one ChangeDelete each).
	DeleteAll(ctx context.Context) error
	// Expire removes every publication whose expiry has passed, emitting a
	// ChangeExpire each, and returns how many. The store calls it from its
	// own timer; tests with a fake clock call it directly.
	Expire(ctx context.Context) (int, error)

	// Changes streams a snapshot of the live publications as ChangePut
	// (revision order), then ChangeSynced, then every change committed
	// afterwards, in revision order. When fromRev > 0 and the store still
	// holds every change after fromRev, it replays those instead of the
	// snapshot. The channel is closed when ctx ends or the store closes;
	// the consumer must keep reading (the store buffers, never blocks).
	Changes(ctx context.Context, fromRev uint64) (<-chan Change, error)

	// Ping reports whether the store can serve (for /readyz).
	Ping(ctx context.Context) error
	// Close stops the expiry timer, ends every Changes stream and releases
	// resources.
	Close() error
}

// Counts are a store's live totals.
type Counts struct {
	Events    map[string]int // live publications per event package
	Resources int            // resources with at least one live publication
}

// Indexed is what a store offers beyond Store so that start-up, /metrics
// and the admin API cost what they touch rather than what is stored: the
// compositor loads a resource when it is first needed instead of every
// publication at start. A Store without it is loaded whole (the compositor
// falls back to Changes with a snapshot).
//
// Publications whose expiry passed but that the store's timer has not
// removed yet may still be counted (for the moment the sweep takes).
type Indexed interface {
	// Counts returns the live totals in O(1).
	Counts(ctx context.Context) (Counts, error)
	// CountPublisher returns the live publications of publisher in O(1).
	CountPublisher(ctx context.Context, publisher string) (int, error)
	// Resources returns up to limit resources with live publications,
	// sorted, skipping the first offset of them; after, when not "",
	// starts after that resource instead (O(page) by the resource index).
	Resources(ctx context.Context, after string, offset, limit int) ([]string, error)
	// ListAt is List of one resource plus the store revision the answer is
	// current at: every change with a higher revision comes later on a
	// Changes stream, none with a lower or equal one changes the answer.
	ListAt(ctx context.Context, resource string) ([]Publication, uint64, error)
	// Watch streams ChangeSynced with the current revision, then every
	// change committed afterwards (Changes without the snapshot).
	Watch(ctx context.Context) (<-chan Change, error)
	// DeletePublisherPrefix removes every publication (live or expired)
	// whose Publisher starts with prefix, one ChangeDelete each, and
	// returns how many.
	DeletePublisherPrefix(ctx context.Context, prefix string) (int, error)
}

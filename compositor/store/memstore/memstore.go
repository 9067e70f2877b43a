package memstore

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/presencehub/presencehub/compositor/store"
	"github.com/presencehub/presencehub/compositor/store/internal/changefeed"
)

// Options configure a Store. The zero value is ready to use.
type Options struct {
	Now func() time.Time // clock for expiry; default time.Now
}

// Store is an in-memory store.Store.
type Store struct {
	now  func() time.Time
	feed *changefeed.Feed

	mu     sync.Mutex // one writer at a time; also guards reads (cheap)
	rev    uint64
	pubs   map[string]store.Publication // by ID
	etags  map[string]string            // ETag -> ID
	closed bool
	lists  map[string]store.ResourceList // lists.go

	timer   *time.Timer
	timerAt time.Time // when the timer fires; zero = not armed
}

var _ store.Store = (*Store)(nil)

// New returns an empty store.
func New(opts Options) *Store {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Store{
		now:   opts.Now,
		feed:  changefeed.New(),
		pubs:  make(map[string]store.Publication),
		etags: make(map[string]string),
	}
}

func (s *Store) live(p store.Publication) bool { return p.Expires.After(s.now()) }

// Get implements store.Store.
func (s *Store) Get(_ context.Context, id string) (store.Publication, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return store.Publication{}, store.ErrClosed
	}
	p, ok := s.pubs[id]
	if !ok || !s.live(p) {
		return store.Publication{}, fmt.Errorf("get %q: %w", id, store.ErrNotFound)
	}
	return p, nil
}

// FindByETag implements store.Store.
func (s *Store) FindByETag(_ context.Context, resource, etag string) (store.Publication, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return store.Publication{}, store.ErrClosed
	}
	p, ok := s.pubs[s.etags[etag]]
	if !ok || p.Resource != resource || !s.live(p) {
		return store.Publication{}, fmt.Errorf("find %s etag %q: %w", resource, etag, store.ErrNotFound)
	}
	return p, nil
}

// List implements store.Store.
func (s *Store) List(_ context.Context, resource string) ([]store.Publication, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, store.ErrClosed
	}
	return s.listLocked(resource), nil
}

func (s *Store) listLocked(resource string) []store.Publication {
	var out []store.Publication
	for _, p := range s.pubs {
		if (resource == "" || p.Resource == resource) && s.live(p) {
			out = append(out, p)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Rev < out[j].Rev })
	return out
}

// Create implements store.Store.
func (s *Store) Create(_ context.Context, p store.Publication) (store.Publication, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return store.Publication{}, store.ErrClosed
	}
	if _, ok := s.pubs[p.ID]; ok {
		return store.Publication{}, fmt.Errorf("create %q: id exists: %w", p.ID, store.ErrConflict)
	}
	if _, ok := s.etags[p.ETag]; ok {
		return store.Publication{}, fmt.Errorf("create %q: etag exists: %w", p.ID, store.ErrConflict)
	}
	s.rev++
	p.Rev = s.rev // p's Body and Meta are kept as given (store.Publication)
	s.pubs[p.ID] = p
	s.etags[p.ETag] = p.ID
	s.armLocked(p.Expires)
	s.feed.Publish(store.Change{Kind: store.ChangePut, Rev: p.Rev, Pub: p})
	return p, nil
}

// Replace implements store.Store.
func (s *Store) Replace(_ context.Context, p store.Publication, ifRev uint64) (store.Publication, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return store.Publication{}, store.ErrClosed
	}
	old, ok := s.pubs[p.ID]
	if !ok || !s.live(old) {
		return store.Publication{}, fmt.Errorf("replace %q: %w", p.ID, store.ErrNotFound)
	}
	if old.Rev != ifRev {
		return store.Publication{}, fmt.Errorf("replace %q: rev %d, want %d: %w", p.ID, old.Rev, ifRev, store.ErrConflict)
	}
	if id, ok := s.etags[p.ETag]; ok && id != p.ID {
		return store.Publication{}, fmt.Errorf("replace %q: etag exists: %w", p.ID, store.ErrConflict)
	}
	s.rev++
	p.Rev = s.rev // p's Body and Meta are kept as given (store.Publication)
	delete(s.etags, old.ETag)
	s.pubs[p.ID] = p
	s.etags[p.ETag] = p.ID
	s.armLocked(p.Expires)
	s.feed.Publish(store.Change{Kind: store.ChangePut, Rev: p.Rev, Pub: p})
	return p, nil
}

// Delete implements store.Store.
func (s *Store) Delete(_ context.Context, id string, ifRev uint64) (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return 0, store.ErrClosed
	}
	old, ok := s.pubs[id]
	if !ok || !s.live(old) {
		return 0, fmt.Errorf("delete %q: %w", id, store.ErrNotFound)
	}
	if old.Rev != ifRev {
		return 0, fmt.Errorf("delete %q: rev %d, want %d: %w", id, old.Rev, ifRev, store.ErrConflict)
	}
	s.removeLocked(old, store.ChangeDelete)
	return s.rev, nil
}

func (s *Store) removeLocked(old store.Publication, kind store.ChangeKind) {
	s.rev++
	delete(s.pubs, old.ID)
	delete(s.etags, old.ETag)
	old.Rev = s.rev
	s.feed.Publish(store.Change{Kind: kind, Rev: s.rev, Pub: old})
}

// DeleteAll implements store.Store.
func (s *Store) DeleteAll(_ context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return store.ErrClosed
	}
	all := make([]store.Publication, 0, len(s.pubs))
	for _, p := range s.pubs {
		all = append(all, p)
	}
	sort.Slice(all, func(i, j int) bool { return all[i].Rev < all[j].Rev })
	for _, p := range all {
		s.removeLocked(p, store.ChangeDelete)
	}
	return nil
}

// Expire implements store.Store.
func (s *Store) Expire(_ context.Context) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return 0, store.ErrClosed
	}
	return s.expireLocked(), nil
}

func (s *Store) expireLocked() int {
	now := s.now()
	var gone []store.Publication
	var next time.Time
	for _, p := range s.pubs {
		if !p.Expires.After(now) {
			gone = append(gone, p)
		} else if next.IsZero() || p.Expires.Before(next) {
			next = p.Expires
		}
	}
	sort.Slice(gone, func(i, j int) bool { return gone[i].Rev < gone[j].Rev })
	for _, p := range gone {
		s.removeLocked(p, store.ChangeExpire)
	}
	s.timerAt = time.Time{}
	if s.timer != nil {
		s.timer.Stop()
	}
	if !next.IsZero() {
		s.armLocked(next)
	}
	return len(gone)
}

// armLocked makes sure the single expiry timer fires no later than at.
func (s *Store) armLocked(at time.Time) {
	if !s.timerAt.IsZero() && !at.Before(s.timerAt) {
		return
	}
	s.timerAt = at
	d := at.Sub(s.now())
	if d < 0 {
		d = 0
	}
	if s.timer == nil {
		s.timer = time.AfterFunc(d, s.sweep)
		return
	}
	s.timer.Reset(d)
}

func (s *Store) sweep() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	s.timerAt = time.Time{}
	s.expireLocked()
}

// Changes implements store.Store.
func (s *Store) Changes(ctx context.Context, fromRev uint64) (<-chan store.Change, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, store.ErrClosed
	}
	return s.feed.Watch(ctx, fromRev, s.rev, func() ([]store.Publication, error) {
		return s.listLocked(""), nil
	})
}

// Ping implements store.Store.
func (s *Store) Ping(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return store.ErrClosed
	}
	return nil
}

// Close implements store.Store.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	if s.timer != nil {
		s.timer.Stop()
	}
	s.mu.Unlock()
	s.feed.Close()
	return nil
}

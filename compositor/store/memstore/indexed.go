package memstore

import (
	"context"
	"sort"
	"strings"

	"github.com/presencehub/presencehub/compositor/store"
)

// store.Indexed for tests and development: the answers are exact, but
// counted by scanning memory (O(n)), which is cheap at the sizes an
// in-memory store holds.

var _ store.Indexed = (*Store)(nil)

// Counts implements store.Indexed.
func (s *Store) Counts(context.Context) (store.Counts, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return store.Counts{}, store.ErrClosed
	}
	c := store.Counts{Events: map[string]int{}}
	res := map[string]bool{}
	for _, p := range s.pubs {
		if s.live(p) {
			c.Events[p.Event]++
			res[p.Resource] = true
		}
	}
	c.Resources = len(res)
	return c, nil
}

// CountPublisher implements store.Indexed.
func (s *Store) CountPublisher(_ context.Context, publisher string) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return 0, store.ErrClosed
	}
	n := 0
	for _, p := range s.pubs {
		if p.Publisher == publisher && s.live(p) {
			n++
		}
	}
	return n, nil
}

// Resources implements store.Indexed.
func (s *Store) Resources(_ context.Context, after string, offset, limit int) ([]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, store.ErrClosed
	}
	set := map[string]bool{}
	for _, p := range s.pubs {
		if p.Resource > after && s.live(p) {
			set[p.Resource] = true
		}
	}
	all := make([]string, 0, len(set))
	for r := range set {
		all = append(all, r)
	}
	sort.Strings(all)
	offset = min(max(offset, 0), len(all))
	return all[offset:min(offset+max(limit, 0), len(all))], nil
}

// ListAt implements store.Indexed.
func (s *Store) ListAt(_ context.Context, resource string) ([]store.Publication, uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, 0, store.ErrClosed
	}
	return s.listLocked(resource), s.rev, nil
}

// Watch implements store.Indexed.
func (s *Store) Watch(ctx context.Context) (<-chan store.Change, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, store.ErrClosed
	}
	return s.feed.Watch(ctx, s.rev, s.rev, func() ([]store.Publication, error) { return nil, nil })
}

// DeletePublisherPrefix implements store.Indexed.
func (s *Store) DeletePublisherPrefix(_ context.Context, prefix string) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return 0, store.ErrClosed
	}
	var gone []store.Publication
	for _, p := range s.pubs {
		if strings.HasPrefix(p.Publisher, prefix) {
			gone = append(gone, p)
		}
	}
	sort.Slice(gone, func(i, j int) bool { return gone[i].Rev < gone[j].Rev })
	for _, p := range gone {
		s.removeLocked(p, store.ChangeDelete)
	}
	return len(gone), nil
}

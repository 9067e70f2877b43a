package server

import (
	"context"
	"time"

	"github.com/presencehub/presencehub/compositor/store"
)

// meteredIndexed is a meteredStore over a store.Indexed: the compositor
// sees the indexed operations (lazy loading, counts, pages) through it.
type meteredIndexed struct {
	meteredStore
	ix store.Indexed
}

var _ store.Indexed = meteredIndexed{}

func (s meteredIndexed) Counts(ctx context.Context) (store.Counts, error) {
	start := time.Now()
	c, err := s.ix.Counts(ctx)
	s.observe("counts", start, err)
	return c, err
}

func (s meteredIndexed) CountPublisher(ctx context.Context, publisher string) (int, error) {
	start := time.Now()
	n, err := s.ix.CountPublisher(ctx, publisher)
	s.observe("count_publisher", start, err)
	return n, err
}

func (s meteredIndexed) Resources(ctx context.Context, after string, offset, limit int) ([]string, error) {
	start := time.Now()
	rs, err := s.ix.Resources(ctx, after, offset, limit)
	s.observe("resources", start, err)
	return rs, err
}

func (s meteredIndexed) ListAt(ctx context.Context, resource string) ([]store.Publication, uint64, error) {
	start := time.Now()
	ps, rev, err := s.ix.ListAt(ctx, resource)
	s.observe("list_at", start, err)
	return ps, rev, err
}

// Watch is the change feed: not timed, like Changes.
func (s meteredIndexed) Watch(ctx context.Context) (<-chan store.Change, error) {
	return s.ix.Watch(ctx)
}

func (s meteredIndexed) DeletePublisherPrefix(ctx context.Context, prefix string) (int, error) {
	start := time.Now()
	n, err := s.ix.DeletePublisherPrefix(ctx, prefix)
	s.observe("delete_prefix", start, err)
	return n, err
}

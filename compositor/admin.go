package compositor

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/presencehub/presencehub/compositor/store"
)

// Find returns the live publication of resource with entity-tag etag
// (ErrNotFound).
func (c *Compositor) Find(ctx context.Context, resource, etag string) (Publication, error) {
	p, err := c.store.FindByETag(ctx, resource, etag)
	if err != nil {
		return Publication{}, fmt.Errorf("compositor: find: %w", err)
	}
	return p, nil
}

// List returns the live publications of resource ("" = all).
func (c *Compositor) List(ctx context.Context, resource string) ([]Publication, error) {
	ps, err := c.store.List(ctx, resource)
	if err != nil {
		return nil, fmt.Errorf("compositor: list: %w", err)
	}
	return ps, nil
}

// Resources returns the resources that have live publications, sorted.
func (c *Compositor) Resources(ctx context.Context) ([]string, error) {
	return c.cache.resources(), ctx.Err()
}

// Remove removes one publication (admin API); subscribers see the change.
func (c *Compositor) Remove(ctx context.Context, resource, etag string) error {
	p, err := c.store.FindByETag(ctx, resource, etag)
	if err != nil {
		return fmt.Errorf("compositor: remove: %w", err)
	}
	rev, err := c.store.Delete(ctx, p.ID, p.Rev)
	if err != nil {
		return fmt.Errorf("compositor: remove: %w", err)
	}
	p.Rev = rev
	c.cache.apply(store.Change{Kind: store.ChangeDelete, Rev: rev, Pub: p}, nil)
	return nil
}

// Clear removes every publication; subscribers see the changes.
func (c *Compositor) Clear(ctx context.Context) error {
	if err := c.store.DeleteAll(ctx); err != nil {
		return fmt.Errorf("compositor: clear: %w", err)
	}
	return nil
}

// Counts returns the live publications per event package and the number
// of resources with live publications: O(1) when the store is
// store.Indexed, a listing of every publication otherwise.
func (c *Compositor) Counts(ctx context.Context) (store.Counts, error) {
	if ix, ok := c.store.(store.Indexed); ok {
		n, err := ix.Counts(ctx)
		if err != nil {
			return store.Counts{}, fmt.Errorf("compositor: counts: %w", err)
		}
		return n, nil
	}
	ps, err := c.store.List(ctx, "")
	if err != nil {
		return store.Counts{}, fmt.Errorf("compositor: counts: %w", err)
	}
	n := store.Counts{Events: map[string]int{}}
	res := map[string]bool{}
	for _, p := range ps {
		n.Events[p.Event]++
		res[p.Resource] = true
	}
	n.Resources = len(res)
	return n, nil
}

// ResourcePage returns up to limit resources with live publications,
// sorted, skipping offset of them (or starting after the resource after,
// when not ""), and how many there are in all: O(page) when the store is
// store.Indexed.
func (c *Compositor) ResourcePage(ctx context.Context, after string, offset, limit int) (page []string, total int, err error) {
	if ix, ok := c.store.(store.Indexed); ok {
		n, err := ix.Counts(ctx)
		if err != nil {
			return nil, 0, fmt.Errorf("compositor: resources: %w", err)
		}
		page, err := ix.Resources(ctx, after, offset, limit)
		if err != nil {
			return nil, 0, fmt.Errorf("compositor: resources: %w", err)
		}
		return page, n.Resources, nil
	}
	all, err := c.Resources(ctx)
	if err != nil {
		return nil, 0, err
	}
	total = len(all)
	if after != "" {
		i, _ := slices.BinarySearch(all, after)
		for i < len(all) && all[i] <= after {
			i++
		}
		all = all[i:]
	}
	offset = min(max(offset, 0), len(all))
	return all[offset:min(offset+max(limit, 0), len(all))], total, nil
}

// RemovePublisherPrefix removes every publication whose publisher starts
// with prefix; subscribers see the changes. With a store.Indexed store it
// is one store operation that costs nothing when there is none.
func (c *Compositor) RemovePublisherPrefix(ctx context.Context, prefix string) (int, error) {
	if ix, ok := c.store.(store.Indexed); ok {
		n, err := ix.DeletePublisherPrefix(ctx, prefix)
		if err != nil {
			return n, fmt.Errorf("compositor: remove publisher %q: %w", prefix, err)
		}
		return n, nil
	}
	ps, err := c.store.List(ctx, "")
	if err != nil {
		return 0, fmt.Errorf("compositor: remove publisher %q: %w", prefix, err)
	}
	n := 0
	for _, p := range ps {
		if !strings.HasPrefix(p.Publisher, prefix) {
			continue
		}
		if err := c.Remove(ctx, p.Resource, p.ETag); err != nil && !errors.Is(err, ErrNotFound) {
			return n, err
		}
		n++
	}
	return n, nil
}

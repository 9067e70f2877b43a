package compositor

import (
	"context"
	"fmt"

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

package compositor

import (
	"context"
	"fmt"

	"github.com/presencehub/presencehub/compositor/store"
)

// Lazy loading.
//
// With a store.Indexed store, New loads nothing: start-up costs the same
// for ten publications as for a million. A resource is loaded, parsed and
// composed when it is first needed — the first View (a new subscription)
// or the first PUBLISH to it — with one indexed read (store.Indexed.ListAt)
// that also says which revision the answer is current at. From then on the
// resource stays in memory and follows the store's feed like before; the
// feed skips changes to resources nobody has asked for (their state is read
// from the store when they are), and changes at or below the revision a
// resource was loaded at (already in what was read).
//
// The race between a load and the feed: the feed records the newest
// revision it has handled (feedRev) under the cache lock. A load whose
// answer is older than feedRev may have missed a change the feed skipped
// while the resource was not loaded yet, so it reads again (the store is
// never behind its own feed, so the second read is current).
//
// Memory: a stored publication nobody asked for costs nothing in the hub;
// a loaded one costs its entry (the record with its body, the parsed
// document) and each of its resource's composed views its rendered body
// (BenchmarkMemory reports both in bytes).

// lazy makes the cache load resources on first use from ix.
func (c *cache) lazy(ix store.Indexed) {
	c.ix = ix
	c.loaded = map[string]uint64{}
}

// coldLocked reports whether ch concerns a resource that is not in memory,
// or is already part of what was loaded. Caller holds mu (read or write).
func (c *cache) coldLocked(ch store.Change) bool {
	if c.ix == nil {
		return false
	}
	at, ok := c.loaded[ch.Pub.Resource]
	return !ok || ch.Rev <= at
}

// ensure loads resource (every event package) if it is not in memory yet.
func (c *cache) ensure(ctx context.Context, resource string) error {
	if c.ix == nil {
		return nil
	}
	c.mu.RLock()
	_, ok := c.loaded[resource]
	c.mu.RUnlock()
	if ok {
		return nil
	}
	for {
		ps, rev, err := c.ix.ListAt(ctx, resource)
		if err != nil {
			return fmt.Errorf("load %s: %w", resource, err)
		}
		bodies := make([]parsed, len(ps))
		for i, p := range ps {
			bodies[i] = c.parse(p) // outside the lock
		}
		c.mu.Lock()
		if _, ok := c.loaded[resource]; ok {
			c.mu.Unlock()
			return nil // loaded meanwhile by another caller
		}
		if c.feedRev > rev {
			c.mu.Unlock()
			continue // the feed may have skipped a newer change: read again
		}
		c.loadLocked(resource, rev, ps, bodies)
		c.mu.Unlock()
		return nil
	}
}

// loadLocked puts a resource's publications, read at revision rev, in
// memory and composes its views. Caller holds mu.
func (c *cache) loadLocked(resource string, rev uint64, ps []store.Publication, bodies []parsed) {
	c.loaded[resource] = rev
	now := c.now()
	touched := map[key]*resState{}
	for i, p := range ps {
		k := key{resource, p.Event}
		rs := c.res[k]
		if rs == nil {
			rs = &resState{pubs: map[string]*entry{}}
			c.res[k] = rs
		}
		e := &entry{pub: p, meta: decodeMeta(p.Meta), presence: bodies[i].presence, dialogs: bodies[i].dialogs, summary: bodies[i].summary}
		c.byID[p.ID] = e
		c.byETag[p.ETag] = e
		c.perPub[p.Publisher]++
		rs.pubs[p.ID] = e
		rs.absorbTombs(e.meta, now)
		rs.rev = max(rs.rev, p.Rev)
		touched[k] = rs
	}
	for k, rs := range touched {
		rs.dialogs = dialogIndex{} // composed whole
		c.composeLocked(k, rs, nil, nil, nil)
		rs.emitted = rs.view.body // what a new subscriber starts from
	}
}

// publications is the number of live publications of publisher: from the
// store's counts when lazy (the cache holds only what was loaded).
func (c *Compositor) publications(ctx context.Context, publisher string) (int, error) {
	if c.cache.ix == nil {
		return c.cache.publications(publisher), nil
	}
	return c.cache.ix.CountPublisher(ctx, publisher)
}

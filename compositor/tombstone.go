package compositor

import (
	"time"

	"github.com/presencehub/presencehub/compositor/dialoginfo"
)

// Terminated dialogs (RFC 4235 §3.7.1: terminated is final). This file is
// the one home of the rule:
//
//   - A body that reports a dialog terminated leaves a tombstone for its id
//     on the resource, alive for Config.TombstoneTTL.
//   - While it lives, the composed view never shows that id again: a later
//     non-terminal state of it (a reordered PUBLISH, another device's stale
//     body) is ignored, and such late states of a body are remembered as
//     ignored in the publication (meta.Ignored) so the publication stays
//     ignored for them even after the tombstone ran out.
//   - Tombstones are written into every dialog publication of the resource
//     (meta.Tombs), so they survive a restart and reach other nodes through
//     the store.

// tombs maps a dialog id to the end of its tombstone (unix ms).
type tombs map[string]int64

// prune drops the tombstones that ran out at now (in place).
func (t tombs) prune(now time.Time) tombs {
	ms := now.UnixMilli()
	for id, until := range t {
		if until <= ms {
			delete(t, id)
		}
	}
	return t
}

// dead reports whether id has a tombstone (prune first for an exact answer).
func (t tombs) dead(id string) bool {
	_, ok := t[id]
	return ok
}

// mergeTombs adds src's tombstones still live at now into dst, keeping the
// later end of each; dst may be nil.
func mergeTombs(dst, src tombs, now time.Time) tombs {
	ms := now.UnixMilli()
	for id, until := range src {
		if until <= ms {
			continue
		}
		if dst == nil {
			dst = make(tombs, len(src))
		}
		if until > dst[id] {
			dst[id] = until
		}
	}
	return dst
}

// absorbTombs is the cache's side: the tombstones a stored publication
// carries join its resource's (called under cache.mu). It returns the ids
// that had no live tombstone before: their dialogs leave the view. Ended
// tombstones are left for the composition to remove (compose.go), which
// shows their dialogs again.
func (rs *resState) absorbTombs(m meta, now time.Time) (added []string) {
	ms := now.UnixMilli()
	for id, until := range m.Tombs {
		if had, ok := rs.tombs[id]; (!ok || had <= ms) && until > ms {
			added = append(added, id)
		}
	}
	rs.tombs = mergeTombs(rs.tombs, m.Tombs, now)
	return added
}

// dialogMeta is Publish's side: the bookkeeping written with a dialog
// publication. It carries the resource's and the previous version's live
// tombstones, adds one for each dialog the body terminates, and marks the
// body's non-terminal dialogs that are already tombstoned as ignored. A
// refresh (no body) keeps the previous version's ignored list. It reads the
// resource's state under one read lock.
func (c *Compositor) dialogMeta(k key, old *entry, body *parsed, now time.Time) meta {
	c.cache.mu.RLock()
	defer c.cache.mu.RUnlock()
	var resTombs tombs
	var view []dialoginfo.Dialog
	if rs := c.cache.res[k]; rs != nil {
		resTombs, view = rs.tombs, rs.view.Dialogs // changed only under the write lock
	}
	ms := now.UnixMilli()
	var out meta
	if old != nil {
		out.Ignored = old.meta.Ignored
	}
	if body != nil && body.dialogs != nil {
		out.Ignored = nil
		for _, d := range body.dialogs.Dialogs {
			if until, ok := resTombs[d.ID]; ok && until > ms && !d.Terminated() {
				out.Ignored = append(out.Ignored, d.ID)
			}
		}
	}
	t := mergeTombs(nil, resTombs, now)
	if old != nil {
		t = mergeTombs(t, old.meta.Tombs, now)
	}
	if body != nil && body.dialogs != nil {
		until := now.Add(c.cache.tombTTL).UnixMilli()
		for _, d := range body.dialogs.Dialogs {
			if d.Terminated() {
				if t == nil {
					t = tombs{}
				}
				if t[d.ID] < until {
					t[d.ID] = until
				}
			}
		}
	}
	out.Tombs = t
	out.Since = sinceMeta(old, body, view, now)
	return out
}

// ignored reports whether the publication's dialog id arrived after its
// termination (never shown).
func (m meta) ignored(id string) bool {
	for _, x := range m.Ignored {
		if x == id {
			return true
		}
	}
	return false
}

// shown reports whether a composed dialog may appear in the view: not
// terminated and not tombstoned (rs.tombs pruned by the caller).
func (rs *resState) shown(id string, terminated bool) bool {
	return !terminated && !rs.tombs.dead(id)
}

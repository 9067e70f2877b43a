package compositor

import (
	"math"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/presencehub/presencehub/compositor/dialoginfo"
	"github.com/presencehub/presencehub/compositor/msgsummary"
	"github.com/presencehub/presencehub/compositor/pidf"
)

// Composition (RFC 3903 §4: the event state compositor): the view of a
// resource is made from its live publications.
//
// Presence views are composed whole (pidf.Compose, a few tuples). Dialog
// views are composed incrementally: a change recomputes only the dialog ids
// of the publication it replaces or removes, of its new version, and of the
// tombstones it adds, from an index of which publications carry each id.
// Time also changes a view — a publication expires, a tombstone ends — so
// the index keeps the earliest instant of each. The next change at or after
// a publication's expiry composes the whole resource again (which is what
// every change did before, and what the incremental path is tested
// against); one at or after a tombstone's end adds the ids whose tombstones
// ended to the ids it recomputes (a call that ended a minute ago: the usual
// case on a PBX's extensions).

// noMessages is the message summary of an account nobody publishes for.
var noMessages = msgsummary.Summary{}

// owner is one publication's dialog of a given id.
type owner struct {
	e *entry
	i int // index in e.dialogs.Dialogs
}

// dialogIndex is the composition state of one dialog resource.
type dialogIndex struct {
	owners  map[string][]owner // dialog id -> publications carrying it (ignored ones left out)
	count   int                // dialogs over every publication's body (bounded per resource)
	pubDue  int64              // unix ns: a publication expires; a full composition is due
	tombDue int64              // unix ns: a tombstone ends; its id is recomputed
}

func dialogsOf(e *entry) []dialoginfo.Dialog {
	if e == nil || e.dialogs == nil {
		return nil
	}
	return e.dialogs.Dialogs
}

// newer is the composition order: the later body wins (Updated, then
// revision).
func newer(a, b *entry) bool {
	if !a.pub.Updated.Equal(b.pub.Updated) {
		return a.pub.Updated.After(b.pub.Updated)
	}
	return a.pub.Rev > b.pub.Rev
}

func (c *cache) composeLocked(k key, rs *resState, prev, next *entry, tombed []string) {
	if k.event == EventDialog {
		c.composeDialogsLocked(k, rs, prev, next, tombed)
		return
	}
	now := c.now()
	es := c.live(rs, now)
	if len(es) == 0 {
		rs.view, c.scratch = emptyView(k, rs.rev).rendered(rs.view, c.scratch)
		return
	}
	v := View{Resource: k.resource, Event: k.event, Rev: rs.rev}
	if k.event == EventMessageSummary {
		// One summary per account: the newest body wins (a voicemail
		// server republishing without SIP-If-Match must not add up).
		v.Summary = es[len(es)-1].summary
		if v.Summary == nil {
			v.Summary = &noMessages
		}
		rs.view, c.scratch = v.rendered(rs.view, c.scratch)
		return
	}
	docs := make([]*pidf.Document, 0, len(es))
	for _, e := range es {
		docs = append(docs, e.presence)
	}
	v.Presence = pidf.Compose(k.resource, docs)
	rs.view, c.scratch = v.rendered(rs.view, c.scratch)
}

// composeDialogsLocked updates the dialog view of k after prev (nil: none)
// became next (nil: removed) and the ids tombed got tombstones.
func (c *cache) composeDialogsLocked(k key, rs *resState, prev, next *entry, tombed []string) {
	now := c.now()
	ix := &rs.dialogs
	if len(rs.pubs) == 0 {
		*ix = dialogIndex{}
		rs.tombs.prune(now)
		rs.view, c.scratch = emptyView(k, rs.rev).rendered(rs.view, c.scratch)
		return
	}
	v := View{Resource: k.resource, Event: k.event, Rev: rs.rev}
	switch ns := now.UnixNano(); {
	case ix.owners == nil || ns >= ix.pubDue:
		v.Dialogs = c.reindexLocked(rs, now)
	case ns >= ix.tombDue:
		tombed = append(tombed, ix.endTombs(rs, now)...)
		fallthrough
	default:
		v.Dialogs = ix.update(rs, prev, next, tombed, now)
	}
	rs.view, c.scratch = v.rendered(rs.view, c.scratch)
}

// reindexLocked rebuilds the index of rs and composes its whole view.
func (c *cache) reindexLocked(rs *resState, now time.Time) []dialoginfo.Dialog {
	ix := dialogIndex{owners: map[string][]owner{}}
	for _, e := range rs.pubs {
		ix.add(e)
	}
	// Publications already expired stay out of the view from now on.
	ix.pubDue = math.MaxInt64
	for _, e := range rs.pubs {
		if e.pub.Expires.After(now) {
			ix.pubDue = min(ix.pubDue, e.pub.Expires.UnixNano())
		}
	}
	out := composeDialogs(c.live(rs, now), rs, now) // prunes the tombstones
	ix.tombDue = math.MaxInt64
	for _, until := range rs.tombs {
		ix.tombDue = min(ix.tombDue, until*int64(time.Millisecond))
	}
	rs.dialogs = ix
	return out
}

// endTombs removes the tombstones of rs that ended at now and returns their
// ids: their dialogs may show again. It sets tombDue from the others.
func (ix *dialogIndex) endTombs(rs *resState, now time.Time) (ended []string) {
	ms := now.UnixMilli()
	ix.tombDue = math.MaxInt64
	for id, until := range rs.tombs {
		if until <= ms {
			ended = append(ended, id)
			delete(rs.tombs, id)
		} else {
			ix.tombDue = min(ix.tombDue, until*int64(time.Millisecond))
		}
	}
	return ended
}

// add indexes e's dialogs.
func (ix *dialogIndex) add(e *entry) {
	ix.pubDue = min(ix.pubDue, e.pub.Expires.UnixNano())
	ds := dialogsOf(e)
	ix.count += len(ds)
	for i := range ds {
		if !e.meta.ignored(ds[i].ID) {
			ix.owners[ds[i].ID] = append(ix.owners[ds[i].ID], owner{e, i})
		}
	}
}

// remove drops e's dialogs from the index.
func (ix *dialogIndex) remove(e *entry) {
	ds := dialogsOf(e)
	ix.count -= len(ds)
	for i := range ds {
		id := ds[i].ID
		os := ix.owners[id]
		for j := range os {
			if os[j].e == e {
				os = slices.Delete(os, j, j+1)
				break
			}
		}
		if len(os) == 0 {
			delete(ix.owners, id)
		} else {
			ix.owners[id] = os
		}
	}
}

// winner is the dialog id shows: the newest live publication's, unless it
// is terminated or tombstoned (rs.tombs pruned at now).
func (ix *dialogIndex) winner(rs *resState, id string, now time.Time) (dialoginfo.Dialog, bool) {
	var best *owner
	for j := range ix.owners[id] {
		o := &ix.owners[id][j]
		if o.e.pub.Expires.After(now) && (best == nil || newer(o.e, best.e)) {
			best = o
		}
	}
	if best == nil {
		return dialoginfo.Dialog{}, false
	}
	d := stamped(best.e.dialogs.Dialogs[best.i], best.e)
	return d, rs.shown(id, d.Terminated())
}

// update applies prev -> next to the index and returns the new view's
// dialogs: the current ones with the affected ids recomputed.
func (ix *dialogIndex) update(rs *resState, prev, next *entry, tombed []string, now time.Time) []dialoginfo.Dialog {
	if next != nil {
		ix.add(next) // first: a dialog kept from prev to next keeps its slice
	}
	if prev != nil {
		ix.remove(prev)
	}
	for _, id := range tombed {
		if until, ok := rs.tombs[id]; ok { // not one that just ended
			ix.tombDue = min(ix.tombDue, until*int64(time.Millisecond))
		}
	}
	affected := make([]string, 0, len(dialogsOf(prev))+len(dialogsOf(next))+len(tombed))
	for _, d := range dialogsOf(prev) {
		affected = append(affected, d.ID)
	}
	for _, d := range dialogsOf(next) {
		affected = append(affected, d.ID)
	}
	affected = append(affected, tombed...)
	slices.Sort(affected)
	affected = slices.Compact(affected)

	cur := rs.view.Dialogs
	out := make([]dialoginfo.Dialog, 0, len(cur)+len(affected))
	i := 0
	for _, id := range affected {
		for i < len(cur) && cur[i].ID < id {
			out = append(out, cur[i])
			i++
		}
		if i < len(cur) && cur[i].ID == id {
			i++ // replaced (or gone)
		}
		if d, ok := ix.winner(rs, id, now); ok {
			out = append(out, d)
		}
	}
	return append(out, cur[i:]...)
}

// live returns the live entries oldest body first: composition order.
func (c *cache) live(rs *resState, now time.Time) []*entry {
	es := make([]*entry, 0, len(rs.pubs))
	for _, e := range rs.pubs {
		if e.pub.Expires.After(now) {
			es = append(es, e)
		}
	}
	sort.Slice(es, func(i, j int) bool { return newer(es[j], es[i]) })
	return es
}

// composeDialogs unites the dialogs of the live publications es: the newest
// body wins per dialog id; terminated dialogs, tombstoned ids and ignored
// late states are left out (RFC 4235 §3.7.1: terminated is final).
func composeDialogs(es []*entry, rs *resState, now time.Time) []dialoginfo.Dialog {
	rs.tombs.prune(now)
	byID := map[string]dialoginfo.Dialog{}
	for _, e := range es {
		for _, d := range dialogsOf(e) {
			if e.meta.ignored(d.ID) {
				continue
			}
			byID[d.ID] = stamped(d, e)
		}
	}
	out := make([]dialoginfo.Dialog, 0, len(byID))
	for id, d := range byID {
		if rs.shown(id, d.Terminated()) {
			out = append(out, d)
		}
	}
	slices.SortFunc(out, func(a, b dialoginfo.Dialog) int { return strings.Compare(a.ID, b.ID) })
	return out
}

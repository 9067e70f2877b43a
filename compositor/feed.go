package compositor

import (
	"bytes"
	"context"
	"errors"

	"github.com/presencehub/presencehub/compositor/dialoginfo"
	"github.com/presencehub/presencehub/compositor/msgsummary"
	"github.com/presencehub/presencehub/compositor/pidf"
	"github.com/presencehub/presencehub/compositor/store"
)

// View is the composed state of one (resource, event). It is shared:
// callers must not modify it.
type View struct {
	Resource, Event string
	Rev             uint64              // store revision that produced it (0 = nothing ever published)
	Presence        *pidf.Document      // event presence: never nil (basic closed when nothing is published)
	Dialogs         []dialoginfo.Dialog // event dialog: live (non-terminated) dialogs, sorted by id
	Summary         *msgsummary.Summary // event message-summary: never nil ("Messages-Waiting: no" when nothing is published)
	// body is the view rendered once when it was composed, shared by the
	// change feed (which compares it with what it emitted last) and every
	// NOTIFY; see Template. nil for a View built by hand.
	body      []byte
	versionAt int
}

// Template returns the view rendered as its event package's document and,
// for dialog-info, the offset where the per-subscription version digits
// belong (RFC 4235 §4.1; see dialoginfo.Document.AppendTemplate); at is -1
// for a document without a version. The bytes are shared: never modify
// them. A view from the compositor was rendered once when composed; a View
// built by hand is rendered now.
func (v View) Template() (body []byte, at int) {
	if v.body != nil {
		return v.body, v.versionAt
	}
	return v.render(nil)
}

// render is the one rendering of a view (PIDF, or dialog-info with a
// version slot), appended to dst.
func (v View) render(dst []byte) ([]byte, int) {
	switch v.Event {
	case EventPresence:
		if v.Presence != nil {
			return v.Presence.AppendXML(dst), -1
		}
	case EventDialog:
		d := dialoginfo.Document{State: dialoginfo.Full, Entity: v.Resource, Dialogs: v.Dialogs}
		return d.AppendTemplate(dst)
	case EventMessageSummary:
		if v.Summary != nil {
			return v.Summary.AppendText(dst), -1
		}
	}
	return dst, -1
}

// rendered returns v with its body rendered (once per composition) into
// scratch, which it returns for reuse. The body is prev's when the bytes
// are the same (a refresh, an unrelated expiry), else an exact-size copy.
func (v View) rendered(prev View, scratch []byte) (View, []byte) {
	scratch, v.versionAt = v.render(scratch[:0])
	if prev.body != nil && prev.versionAt == v.versionAt && bytes.Equal(prev.body, scratch) {
		v.body = prev.body
	} else {
		v.body = bytes.Clone(scratch)
	}
	return v, scratch
}

// AppendXML appends the view as the event package's body (version 0 for
// dialog-info; the notifier sets its own per-subscription version).
func (v View) AppendXML(dst []byte) []byte {
	body, at := v.Template()
	if at < 0 {
		return append(dst, body...)
	}
	dst = append(dst, body[:at]...)
	dst = append(dst, '0')
	return append(dst, body[at:]...)
}

// Change says that a resource's composed view changed.
type Change struct{ View View }

// View returns the composed state of (resource, event) from memory. With a
// store.Indexed store, the first View of a resource loads it from the
// store (one indexed read) and keeps it composed in memory from then on.
func (c *Compositor) View(resource, event string) View {
	if err := c.cache.ensure(c.feedCtx, resource); err != nil {
		c.log.Warn("compositor: load resource", "resource", resource, "err", err)
	}
	return c.cache.view(key{resource, event})
}

// Subscribe registers fn. fn is called from the compositor's single feed
// goroutine, in revision order, only when a resource's composed view
// really changed (PUBLISH, modify, remove, expiry, other writers). fn must
// not block; it never delays Publish. The returned func unregisters.
//
// A change carries the newest composed view when the feed reaches it, so
// states superseded before then are coalesced: fn sees every resource's
// final state, not necessarily each intermediate one (a NOTIFY carries
// full state, RFC 6665 §4.2.2 allows such rate limiting).
func (c *Compositor) Subscribe(fn func(Change)) (cancel func()) {
	c.subMu.Lock()
	c.subSeq++
	id := c.subSeq
	c.subs[id] = fn
	c.rebuildSubsLocked()
	c.subMu.Unlock()
	return func() {
		c.subMu.Lock()
		delete(c.subs, id)
		c.rebuildSubsLocked()
		c.subMu.Unlock()
	}
}

func (c *Compositor) rebuildSubsLocked() {
	list := make([]func(Change), 0, len(c.subs))
	for i := uint64(1); i <= c.subSeq; i++ {
		if fn, ok := c.subs[i]; ok {
			list = append(list, fn)
		}
	}
	c.subList = list
}

func (c *Compositor) subscribers() []func(Change) {
	c.subMu.Lock()
	defer c.subMu.Unlock()
	return c.subList
}

// feed consumes the store's Changes and emits view changes.
type feed struct {
	c *Compositor
}

// load applies the snapshot up to ChangeSynced.
func (f *feed) load(ctx context.Context, changes <-chan store.Change) error {
	for {
		select {
		case ch, ok := <-changes:
			if !ok {
				return errors.New("store change feed closed during load")
			}
			if ch.Kind == store.ChangeSynced {
				return nil
			}
			if k, ok := f.c.cache.applyFeed(ch); ok {
				f.c.cache.emit(k) // loaded: the state subscribers start from
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// run is the feed goroutine; it ends when the stream closes (Close, or
// the store closed).
func (f *feed) run(changes <-chan store.Change) {
	defer close(f.c.feedDone)
	for ch := range changes {
		if ch.Kind == store.ChangeSynced {
			continue
		}
		k, ok := f.c.cache.applyFeed(ch)
		f.c.cache.pruneGone(ch.Rev)
		if !ok {
			continue // a resource not in memory: nobody has asked for it
		}
		v, changed := f.c.cache.emit(k)
		if !changed {
			continue
		}
		for _, fn := range f.c.subscribers() {
			fn(Change{View: v})
		}
	}
	if f.c.feedCtx.Err() == nil {
		f.c.log.Error("compositor: store change feed ended; views no longer follow the store")
	}
}

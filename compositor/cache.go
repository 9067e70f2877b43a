package compositor

import (
	"bytes"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/presencehub/presencehub/compositor/dialoginfo"
	"github.com/presencehub/presencehub/compositor/msgsummary"
	"github.com/presencehub/presencehub/compositor/pidf"
	"github.com/presencehub/presencehub/compositor/store"
)

type key struct{ resource, event string }

// entry is one live publication with its parsed body.
type entry struct {
	pub      store.Publication
	meta     meta
	presence *pidf.Document
	dialogs  *dialoginfo.Document
	summary  *msgsummary.Summary
}

// resState is one (resource, event): its publications and composed view.
type resState struct {
	pubs    map[string]*entry
	tombs   tombs       // terminated dialog ids (tombstone.go)
	dialogs dialogIndex // event dialog: what incremental composition needs (compose.go)
	rev     uint64
	view    View
	// emitted is the body of the view last handed to Subscribe callbacks
	// (or loaded): the feed emits a change only when the body differs.
	emitted []byte
}

// cache is the authoritative in-memory state for View: every live
// publication, parsed, and the composed view of each resource. It is
// updated by Publish with its own commits and by the feed with every
// change; applying is idempotent by revision.
type cache struct {
	now     func() time.Time
	lim     pidf.Limits
	log     *slog.Logger
	tombTTL time.Duration

	mu     sync.RWMutex
	byID   map[string]*entry
	byETag map[string]*entry
	res    map[key]*resState
	perPub map[string]int // live publications per publisher
	// gone remembers deleted ids until the feed passed the delete's
	// revision, so a late put from the feed cannot resurrect them.
	gone map[string]uint64
	// scratch is where views are rendered (under mu) before they are kept.
	scratch []byte

	// inFlight holds the parsed bodies of Publish's own writes between the
	// store call and their apply, by entity-tag: the feed, which under
	// group commit often brings a write before its Publish applies it,
	// takes the body from here instead of parsing it again (flight.go).
	flightMu sync.Mutex
	inFlight map[string]flight

	// With a store.Indexed store the cache is lazy (lazy.go): a resource is
	// loaded when first needed and the feed skips resources not loaded.
	ix      store.Indexed     // nil: every publication is loaded at start
	loaded  map[string]uint64 // resource → store revision it was loaded at
	feedRev uint64            // newest revision the feed has handled
}

func newCache(cfg Config) *cache {
	return &cache{
		now:     cfg.Now,
		tombTTL: cfg.TombstoneTTL,
		lim:     pidf.Limits{MaxBytes: cfg.MaxBodySize, MaxDepth: cfg.MaxDepth},
		log:     cfg.Logger,
		byID:    map[string]*entry{},
		byETag:  map[string]*entry{},
		res:     map[key]*resState{},
		perPub:  map[string]int{},
		gone:    map[string]uint64{},

		inFlight: map[string]flight{},
	}
}

// parsed is a body Publish already parsed, to spare parsing it again, and
// with hasMeta the bookkeeping it wrote into the publication's Meta, to
// spare decoding it.
type parsed struct {
	presence *pidf.Document
	dialogs  *dialoginfo.Document
	summary  *msgsummary.Summary
	meta     meta
	hasMeta  bool
}

func (c *cache) parse(p store.Publication) parsed {
	var out parsed
	var err error
	switch p.Event {
	case EventPresence:
		out.presence, err = pidf.Parse(p.Body, c.lim)
	case EventDialog:
		out.dialogs, err = dialoginfo.Parse(p.Body, c.lim)
	case EventMessageSummary:
		out.summary, err = msgsummary.Parse(p.Body)
	}
	if err != nil {
		// Only validated bodies are stored; this is another writer's bug.
		c.log.Warn("compositor: stored body does not parse", "id", p.ID, "resource", p.Resource, "err", err)
	}
	return out
}

// apply applies one of this node's own committed changes (Publish, the
// admin API); body is the parsed body of a put when the caller has it. It
// returns the affected key.
func (c *cache) apply(ch store.Change, body *parsed) key {
	k, _ := c.applyChange(ch, body, false)
	return k
}

// applyFeed applies a change from the store's feed. It reports false when
// the change does not concern a resource in memory (lazy.go).
func (c *cache) applyFeed(ch store.Change) (key, bool) {
	return c.applyChange(ch, nil, true)
}

func (c *cache) applyChange(ch store.Change, body *parsed, fromFeed bool) (key, bool) {
	k := key{ch.Pub.Resource, ch.Pub.Event}
	if ch.Kind == store.ChangePut && body == nil {
		c.mu.RLock()
		cur := c.byID[ch.Pub.ID]
		cold := c.coldLocked(ch)
		applied := (cur != nil && cur.pub.Rev >= ch.Rev) || c.gone[ch.Pub.ID] >= ch.Rev
		c.mu.RUnlock()
		if applied && !cold {
			// The feed bringing this node's own commit, which Publish
			// applied: a loaded resource, so nothing the feed skips and
			// feedRev need not move (lazy.go); no write lock.
			return k, true
		}
		if !applied && !cold {
			pb, ok := c.flying(ch.Pub)
			if !ok {
				pb = c.parse(ch.Pub) // outside the lock
			}
			body = &pb
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if fromFeed {
		c.feedRev = max(c.feedRev, ch.Rev)
	}
	if c.coldLocked(ch) {
		return k, false
	}
	if ch.Kind == store.ChangePut && body == nil {
		cur := c.byID[ch.Pub.ID]
		if (cur != nil && cur.pub.Rev >= ch.Rev) || c.gone[ch.Pub.ID] >= ch.Rev {
			return k, true
		}
		pb, ok := c.flying(ch.Pub)
		if !ok {
			pb = c.parse(ch.Pub) // loaded meanwhile: rare
		}
		body = &pb
	}
	rs := c.res[k]
	if rs == nil {
		rs = &resState{pubs: map[string]*entry{}}
		c.res[k] = rs
	}
	cur := c.byID[ch.Pub.ID]
	var next *entry
	var tombed []string
	switch ch.Kind {
	case store.ChangePut:
		if (cur != nil && cur.pub.Rev >= ch.Rev) || c.gone[ch.Pub.ID] >= ch.Rev {
			return k, true
		}
		e := &entry{pub: ch.Pub, meta: body.meta, presence: body.presence, dialogs: body.dialogs, summary: body.summary}
		if !body.hasMeta {
			e.meta = decodeMeta(ch.Pub.Meta)
		}
		if cur != nil {
			delete(c.byETag, cur.pub.ETag)
		} else {
			c.perPub[e.pub.Publisher]++
		}
		c.byID[e.pub.ID] = e
		c.byETag[e.pub.ETag] = e
		rs.pubs[e.pub.ID] = e
		next = e
		tombed = rs.absorbTombs(e.meta, c.now())
	case store.ChangeDelete, store.ChangeExpire:
		if cur != nil && cur.pub.Rev > ch.Rev {
			return k, true
		}
		if cur != nil {
			delete(c.byETag, cur.pub.ETag)
			delete(c.byID, cur.pub.ID)
			delete(rs.pubs, cur.pub.ID)
			if c.perPub[cur.pub.Publisher]--; c.perPub[cur.pub.Publisher] <= 0 {
				delete(c.perPub, cur.pub.Publisher)
			}
		}
		if c.gone[ch.Pub.ID] < ch.Rev {
			c.gone[ch.Pub.ID] = ch.Rev
		}
	default:
		return k, true
	}
	rs.rev = max(rs.rev, ch.Rev)
	c.composeLocked(k, rs, cur, next, tombed)
	return k, true
}

// emit reports whether k's view differs from what was last emitted (or
// loaded), and marks it emitted. Only the feed goroutine calls it.
func (c *cache) emit(k key) (View, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	rs := c.res[k]
	if rs == nil {
		return View{}, false
	}
	body := rs.view.body
	if last := rs.emitted; len(body) == len(last) && (len(body) == 0 || &body[0] == &last[0] || bytes.Equal(body, last)) {
		return rs.view, false
	}
	rs.emitted = body
	return rs.view, true
}

// pruneGone forgets deletes the feed has passed: no older change can come.
func (c *cache) pruneGone(feedRev uint64) {
	c.mu.RLock()
	none := len(c.gone) == 0
	c.mu.RUnlock()
	if none {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for id, rev := range c.gone {
		if rev <= feedRev {
			delete(c.gone, id)
		}
	}
}

// closedTuple is the presence of a resource nobody publishes for
// (docs/protocol.md, "PUBLISH"): one tuple, basic closed (RFC 3863).
var closedTuple = []pidf.Tuple{{ID: "none", Basic: pidf.Closed}}

func emptyView(k key, rev uint64) View {
	v := View{Resource: k.resource, Event: k.event, Rev: rev}
	switch k.event {
	case EventPresence:
		v.Presence = &pidf.Document{Entity: k.resource, Tuples: closedTuple}
	case EventMessageSummary:
		v.Summary = &noMessages
	}
	return v
}

// view returns the composed view of k.
func (c *cache) view(k key) View {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if rs := c.res[k]; rs != nil {
		return rs.view
	}
	return emptyView(k, 0)
}

// byTag returns the live entry with this entity-tag, or nil.
func (c *cache) byTag(etag string) *entry {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.byETag[etag]
}

// resources returns the resources with live publications, sorted.
func (c *cache) resources() []string {
	now := c.now()
	c.mu.RLock()
	set := map[string]bool{}
	for k, rs := range c.res {
		for _, e := range rs.pubs {
			if e.pub.Expires.After(now) {
				set[k.resource] = true
				break
			}
		}
	}
	c.mu.RUnlock()
	out := make([]string, 0, len(set))
	for r := range set {
		out = append(out, r)
	}
	sort.Strings(out)
	return out
}

// size is the number of publications of k and of dialogs in their bodies.
func (c *cache) size(k key) (pubs, dialogs int) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if rs := c.res[k]; rs != nil {
		return len(rs.pubs), rs.dialogs.count
	}
	return 0, 0
}

// publications is the number of live publications of publisher.
func (c *cache) publications(publisher string) int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.perPub[publisher]
}

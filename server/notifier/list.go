package notifier

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/presencehub/presencehub/compositor"
	"github.com/presencehub/presencehub/internal/siprule"
	"github.com/presencehub/presencehub/server/auth"
)

// Resource lists (RFC 4662): one subscription dialog watches every member of
// a list. The dialog machinery (CSeq, one NOTIFY in flight, expiry, rebind,
// shutdown) is the ordinary subscription's; what differs is the body, which
// is built from the list's member states when a NOTIFY can leave (rlmi.go),
// so changes that arrive while one is in flight accumulate per member
// (newest state each) instead of queueing.

// List is a stored resource list served at sip:<Name>@<domain>.
type List struct {
	Name    string
	Event   string
	Members []string          // user parts or sip: URIs, in display order
	Names   map[string]string // member (as given in Members) → display name
}

// Defaults of the list settings.
const (
	DefaultListBatch      = 100 * time.Millisecond
	DefaultMaxListMembers = 1000
	// slowAnswer: a NOTIFY unanswered this long marks the subscriber slow;
	// its next NOTIFY carries full state (one resync, never a queue).
	slowAnswer = time.Second
)

// RLSUser is the user part of the URI that takes request-contained lists
// (RFC 5367): sip:rls@<domain>.
const RLSUser = "rls"

// member is one resource of a list subscription, guarded by the
// subscription's mu.
type member struct {
	aor, name string
	inst      string // instance id (RFC 4662 §5.2), stable for the subscription
	rejected  bool   // the watcher may not watch it: never indexed, never shown
	rev       uint64 // compositor revision of cur (0: nothing ever published: pending)
	cur       Body   // newest rendering
	sent      []byte // the rendering last sent (nil: none)
	ver       uint64 // version of this member's next document (RFC 4235 §4.1)
	dirty     bool
}

// listState is the list part of a list subscription.
type listState struct {
	uri      string // list URI (RLMI uri attribute)
	name     string // stored list name; "" for a request-contained list
	id       *auth.Identity
	entries  []string          // the list as given (stored or in the SUBSCRIBE)
	names    map[string]string // display names by entry
	mprov    *Provider         // renders the members' documents
	mvariant string
	boundary string
	cidHost  string
	ctype    string // the NOTIFYs' Content-Type
	window   time.Duration

	// guarded by the notifier's mu: the AORs indexed in byMember
	indexed []string

	// guarded by the subscription's mu
	members []*member
	byAOR   map[string]*member
	ndirty  int
	full    bool // the next NOTIFY carries full state
	fetch   bool // Expires 0: the one NOTIFY carries the state (RFC 6665 §4.4.3)
	armed   bool // the batching timer runs
	instSeq uint64
}

// memberSpec is a member resolved for one watcher.
type memberSpec struct {
	aor, name string
	rejected  bool
}

// resolve turns list entries into AORs of the domain and decides, per
// member, whether id may watch it (docs/protocol.md, "Resource lists").
func (n *Notifier) resolve(entries []string, names map[string]string, id *auth.Identity) []memberSpec {
	out := make([]memberSpec, 0, len(entries))
	seen := make(map[string]bool, len(entries))
	for _, e := range entries {
		user, host, ok := splitMember(e, n.cfg.Domain)
		aor := e
		if ok {
			aor = siprule.AOR(user, host)
		}
		if seen[aor] {
			continue
		}
		seen[aor] = true
		out = append(out, memberSpec{aor: aor, name: names[e], rejected: !ok || !id.CanSubscribe(user, host)})
	}
	return out
}

// splitMember reads a list entry: a user part of the domain, or a sip/sips URI.
func splitMember(e, domain string) (user, host string, ok bool) {
	if !strings.Contains(e, ":") {
		if e == "" || strings.ContainsAny(e, "@<>\" \t\r\n") {
			return "", "", false
		}
		return e, domain, true
	}
	var u sip.Uri
	if err := sip.ParseUri(e, &u); err != nil || (u.Scheme != "sip" && u.Scheme != "sips") || u.User == "" {
		return "", "", false
	}
	return u.User, u.Host, true
}

// setMembersLocked replaces the member set, keeping what is known of members
// that stay (loadMembers reads the state of new ones).
func (l *listState) setMembersLocked(specs []memberSpec) {
	old := l.byAOR
	l.members = make([]*member, 0, len(specs))
	l.byAOR = make(map[string]*member, len(specs))
	l.ndirty = 0
	for _, sp := range specs {
		m := old[sp.aor]
		if m == nil || m.rejected != sp.rejected {
			l.instSeq++
			m = &member{aor: sp.aor, inst: instanceID(l.instSeq), rejected: sp.rejected}
		}
		m.name = sp.name
		m.dirty = false
		l.members = append(l.members, m)
		l.byAOR[sp.aor] = m
	}
	l.full = true
}

// instanceID is a short id unique within the subscription.
func instanceID(seq uint64) string {
	const chars = "abcdefghijklmnopqrstuvwxyz0123456789"
	b := []byte{'i'}
	for {
		b = append(b, chars[seq%36])
		seq /= 36
		if seq == 0 {
			return string(b)
		}
	}
}

// memberChanged takes the newest state of one member (fan-out).
func (s *subscription) memberChanged(aor string, rev uint64, body Body) {
	s.mu.Lock()
	l := s.list
	m := l.byAOR[aor]
	if s.final || s.done || m == nil || m.rejected || rev < m.rev {
		s.mu.Unlock()
		return
	}
	m.rev, m.cur = rev, body
	changed := m.sent == nil || !bytes.Equal(body.Data, m.sent)
	switch {
	case changed && !m.dirty:
		m.dirty = true
		l.ndirty++
	case !changed && m.dirty:
		// Back to what the subscriber has: nothing to send for it.
		m.dirty = false
		l.ndirty--
	}
	if !changed {
		s.mu.Unlock()
		s.n.obs.NotifyDeduplicated(s.res.event)
		return
	}
	send := s.scheduleLocked()
	s.mu.Unlock()
	send.run()
}

// scheduleLocked makes sure a NOTIFY with the pending list state leaves
// within the batching window (or with the answer to the one in flight).
func (s *subscription) scheduleLocked() sendOp {
	l := s.list
	if l.window <= 0 {
		return s.queueLocked(outgoing{})
	}
	if !l.armed {
		l.armed = true
		time.AfterFunc(l.window, s.flushList)
	}
	return sendOp{}
}

// flushList ends a batching window.
func (s *subscription) flushList() {
	s.mu.Lock()
	s.list.armed = false
	if s.final || s.done || (s.list.ndirty == 0 && !s.list.full) {
		s.mu.Unlock()
		return
	}
	send := s.queueLocked(outgoing{})
	s.mu.Unlock()
	send.run()
}

// fanOutLists hands a changed view to the list subscriptions that have the
// resource as a member.
func (n *Notifier) fanOutLists(v compositor.View) {
	k := resourceKey{v.Resource, v.Event}
	n.mu.RLock()
	set := n.byMember[k]
	if len(set) == 0 {
		n.mu.RUnlock()
		return
	}
	subs := n.fanSubs[:0]
	for s := range set {
		subs = append(subs, s)
	}
	n.mu.RUnlock()
	var cache renderings[Body]
	for _, s := range subs {
		rk := renderKey{s.list.mprov, s.list.mvariant}
		body, ok := cache.get(rk)
		if !ok {
			b, err := s.list.mprov.Render(v, s.list.mvariant)
			if err != nil {
				n.log.Error("render list member", "provider", s.list.mprov.Name, "resource", v.Resource, "err", err)
				continue
			}
			body = b
			cache.put(rk, b)
		}
		s.memberChanged(v.Resource, v.Rev, body)
	}
	n.keepFanSubs(subs)
}

// indexListLocked indexes a list subscription by its watchable members and
// by its stored list's name.
func (n *Notifier) indexListLocked(s *subscription, specs []memberSpec) {
	l := s.list
	for _, aor := range l.indexed {
		k := resourceKey{aor, s.res.event}
		if set := n.byMember[k]; set != nil {
			delete(set, s)
			if len(set) == 0 {
				delete(n.byMember, k)
			}
		}
	}
	l.indexed = l.indexed[:0]
	for _, sp := range specs {
		if sp.rejected {
			continue
		}
		k := resourceKey{sp.aor, s.res.event}
		set := n.byMember[k]
		if set == nil {
			set = make(map[*subscription]struct{})
			n.byMember[k] = set
		}
		set[s] = struct{}{}
		l.indexed = append(l.indexed, sp.aor)
	}
	if l.name != "" {
		set := n.byList[l.name]
		if set == nil {
			set = make(map[*subscription]struct{})
			n.byList[l.name] = set
		}
		set[s] = struct{}{}
	}
}

// unindexListLocked undoes indexListLocked (the subscription ended).
func (n *Notifier) unindexListLocked(s *subscription) {
	n.indexListLocked(s, nil)
	if name := s.list.name; name != "" {
		if set := n.byList[name]; set != nil {
			delete(set, s)
			if len(set) == 0 {
				delete(n.byList, name)
			}
		}
	}
}

// views reads the current view of every watchable member.
func (n *Notifier) views(specs []memberSpec, event string, skip map[string]*member) map[string]compositor.View {
	out := make(map[string]compositor.View, len(specs))
	for _, sp := range specs {
		if sp.rejected || skip[sp.aor] != nil {
			continue
		}
		out[sp.aor] = n.cfg.Views.View(sp.aor, event)
	}
	return out
}

// loadMembers reads the views of members with no state yet. The
// subscription is indexed already: a change that raced the read is newer
// and kept by revision.
func (s *subscription) loadMembers(specs []memberSpec) {
	s.mu.Lock()
	skip := make(map[string]*member, len(s.list.byAOR))
	for aor, m := range s.list.byAOR {
		if m.rev > 0 {
			skip[aor] = m
		}
	}
	s.mu.Unlock()
	views := s.n.views(specs, s.res.event, skip)
	s.mu.Lock()
	s.list.applyViewsLocked(views)
	s.mu.Unlock()
}

func (l *listState) applyViewsLocked(views map[string]compositor.View) {
	for aor, v := range views {
		m := l.byAOR[aor]
		if m == nil || m.rejected || (m.rev != 0 && v.Rev <= m.rev) {
			continue
		}
		if b, err := l.mprov.Render(v, l.mvariant); err == nil {
			m.cur, m.rev = b, v.Rev
		}
	}
}

// SetList adds or replaces a stored list. Its live subscriptions get the
// new member set at once, in a NOTIFY with full state (RFC 4662 §5.2); a
// list whose event package changed ends them (reason deactivated: they may
// subscribe again).
func (n *Notifier) SetList(l List) {
	n.mu.Lock()
	n.lists[l.Name] = l
	subs := make([]*subscription, 0, len(n.byList[l.Name]))
	for s := range n.byList[l.Name] {
		subs = append(subs, s)
	}
	n.mu.Unlock()
	for _, s := range subs {
		if s.res.event != l.Event {
			s.terminate(ReasonDeactivated)
			continue
		}
		if !n.applyMembers(s, l.Members, l.Names, nil) {
			continue
		}
		s.mu.Lock()
		var send sendOp
		if !s.final && !s.done {
			send = s.queueLocked(outgoing{}) // at once, not after a window
		}
		s.mu.Unlock()
		send.run()
	}
}

// applyMembers gives a list subscription a new member set (and, when id is
// set, a new identity deciding what it may watch), indexed and loaded; the
// next NOTIFY has full state. false: the subscription has ended.
func (n *Notifier) applyMembers(s *subscription, entries []string, names map[string]string, id *auth.Identity) bool {
	s.mu.Lock()
	if s.final || s.done {
		s.mu.Unlock()
		return false
	}
	if id != nil {
		s.list.id = id
	}
	s.list.entries, s.list.names = entries, names
	specs := n.resolve(entries, names, s.list.id)
	s.list.setMembersLocked(specs)
	s.mu.Unlock()
	n.mu.Lock()
	if !s.isDone() {
		n.indexListLocked(s, specs)
	}
	n.mu.Unlock()
	s.loadMembers(specs)
	return true
}

// DeleteList removes a stored list; its subscriptions end with reason
// noresource (RFC 6665 §4.2.2).
func (n *Notifier) DeleteList(name string) {
	n.mu.Lock()
	delete(n.lists, name)
	subs := make([]*subscription, 0, len(n.byList[name]))
	for s := range n.byList[name] {
		subs = append(subs, s)
	}
	n.mu.Unlock()
	for _, s := range subs {
		s.terminate(ReasonNoResource)
	}
}

func (n *Notifier) storedList(name string) (List, bool) {
	n.mu.RLock()
	defer n.mu.RUnlock()
	l, ok := n.lists[name]
	return l, ok
}

func (s *subscription) isDone() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.done
}

// CheckList validates a stored list against the notifier's rules: a name
// usable as a user part (not "rls"), an event package with a provider, at
// most MaxListMembers members, each a user part or a sip/sips URI, and
// display names only for members.
func (n *Notifier) CheckList(l List) error {
	switch {
	case l.Name == "" || len(l.Name) > 64 || !siprule.IsToken(l.Name) || strings.ContainsAny(l.Name, "@:"):
		return errors.New("name must be a user part of at most 64 token characters")
	case l.Name == RLSUser:
		return errors.New(`name "rls" is the request-contained list URI (RFC 5367)`)
	case !containsStr(n.cfg.Providers.Events(), l.Event):
		return fmt.Errorf("event must be one of %s", strings.Join(n.cfg.Providers.Events(), ", "))
	case len(l.Members) > n.cfg.MaxListMembers:
		return fmt.Errorf("more than %d members", n.cfg.MaxListMembers)
	}
	in := make(map[string]bool, len(l.Members))
	for _, m := range l.Members {
		if _, _, ok := splitMember(m, n.cfg.Domain); !ok {
			return fmt.Errorf("member %q is neither a user part nor a sip: URI", m)
		}
		in[m] = true
	}
	for m := range l.Names {
		if !in[m] {
			return fmt.Errorf("name given for %q, which is no member", m)
		}
	}
	return nil
}

// ListURI is the URI of the stored list name.
func (n *Notifier) ListURI(name string) string { return siprule.AOR(name, n.cfg.Domain) }

// Lists returns the stored lists the notifier serves.
func (n *Notifier) Lists() []List {
	n.mu.RLock()
	defer n.mu.RUnlock()
	out := make([]List, 0, len(n.lists))
	for _, l := range n.lists {
		out = append(out, l)
	}
	return out
}

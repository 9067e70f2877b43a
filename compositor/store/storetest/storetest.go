package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/presencehub/presencehub/compositor/store"
)

// Clock is a settable clock for expiry tests.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock returns a clock at t.
func NewClock(t time.Time) *Clock { return &Clock{t: t} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock forward.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// Factory returns a new, empty store using now as its clock. The store is
// closed by the suite.
type Factory func(t *testing.T, now func() time.Time) store.Store

// Run runs the conformance suite against stores made by newStore.
func Run(t *testing.T, newStore Factory) {
	tests := []struct {
		name string
		fn   func(t *testing.T, newStore Factory)
	}{
		{"CreateGetFind", testCreateGetFind},
		{"Create_DuplicateIDOrETag_Conflict", testCreateDuplicate},
		{"Replace_CompareAndSwap", testReplaceCAS},
		{"Delete_CompareAndSwap", testDeleteCAS},
		{"List_ByResource_RevisionOrder", testList},
		{"DeleteAll_EmitsDeletes", testDeleteAll},
		{"Expire_FakeClock_EmitsExpire", testExpireFake},
		{"Expire_Timer_EmitsExpire", testExpireTimer},
		{"Changes_SnapshotThenTail", testChangesSnapshot},
		{"Changes_ResumeFromRev", testChangesResume},
		{"Changes_ClosedOnCancel", testChangesCancel},
		{"Indexed_CountsFollowEveryWrite", testIndexedCounts},
		{"Indexed_ResourcesPagedInOrder", testIndexedResources},
		{"Indexed_ListAtAndWatch_NoGapNoSnapshot", testIndexedListAtWatch},
		{"Indexed_DeletePublisherPrefix_EmitsDeletes", testIndexedDeletePrefix},
		{"Lists_PutGetAllDelete", testLists},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, newStore) })
	}
}

var epoch = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

func open(t *testing.T, newStore Factory, now func() time.Time) store.Store {
	t.Helper()
	s := newStore(t, now)
	t.Cleanup(func() { s.Close() })
	return s
}

var seq atomic.Uint64

func pub(resource string, exp time.Time) store.Publication {
	n := seq.Add(1)
	return store.Publication{
		ID:          fmt.Sprintf("id-%d", n),
		Resource:    resource,
		Event:       "presence",
		ETag:        fmt.Sprintf("etag-%d", n),
		Expires:     exp,
		Created:     epoch,
		Updated:     epoch,
		ContentType: "application/pidf+xml",
		Body:        []byte("<presence/>"),
		Publisher:   "1001",
		Meta:        []byte(`{}`),
	}
}

func samePub(t *testing.T, got, want store.Publication) {
	t.Helper()
	if got.ID != want.ID || got.Resource != want.Resource || got.Event != want.Event ||
		got.ETag != want.ETag || got.Rev != want.Rev || !got.Expires.Equal(want.Expires) ||
		!got.Created.Equal(want.Created) || !got.Updated.Equal(want.Updated) ||
		got.ContentType != want.ContentType || string(got.Body) != string(want.Body) ||
		got.Publisher != want.Publisher || string(got.Meta) != string(want.Meta) {
		t.Fatalf("publication differs:\n got %+v\nwant %+v", got, want)
	}
}

func mustCreate(t *testing.T, s store.Store, p store.Publication) store.Publication {
	t.Helper()
	got, err := s.Create(context.Background(), p)
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	if got.Rev == 0 {
		t.Fatalf("Create returned Rev 0")
	}
	return got
}

func testCreateGetFind(t *testing.T, newStore Factory) {
	ctx := context.Background()
	clk := NewClock(epoch)
	s := open(t, newStore, clk.Now)
	p := mustCreate(t, s, pub("sip:a@x", epoch.Add(time.Hour)))
	got, err := s.Get(ctx, p.ID)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	samePub(t, got, p)
	got, err = s.FindByETag(ctx, "sip:a@x", p.ETag)
	if err != nil {
		t.Fatalf("FindByETag: %v", err)
	}
	samePub(t, got, p)
	if _, err := s.FindByETag(ctx, "sip:b@x", p.ETag); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("FindByETag other resource: err %v, want ErrNotFound", err)
	}
	if _, err := s.Get(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Get unknown: err %v, want ErrNotFound", err)
	}
	if err := s.Ping(ctx); err != nil {
		t.Fatalf("Ping: %v", err)
	}
}

func testCreateDuplicate(t *testing.T, newStore Factory) {
	ctx := context.Background()
	s := open(t, newStore, NewClock(epoch).Now)
	p := mustCreate(t, s, pub("sip:a@x", epoch.Add(time.Hour)))
	dupID := pub("sip:a@x", epoch.Add(time.Hour))
	dupID.ID = p.ID
	if _, err := s.Create(ctx, dupID); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("duplicate ID: err %v, want ErrConflict", err)
	}
	dupTag := pub("sip:a@x", epoch.Add(time.Hour))
	dupTag.ETag = p.ETag
	if _, err := s.Create(ctx, dupTag); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("duplicate ETag: err %v, want ErrConflict", err)
	}
}

func testReplaceCAS(t *testing.T, newStore Factory) {
	ctx := context.Background()
	s := open(t, newStore, NewClock(epoch).Now)
	p := mustCreate(t, s, pub("sip:a@x", epoch.Add(time.Hour)))
	next := p
	next.ETag = "etag-new-" + p.ID
	next.Body = []byte("<presence>2</presence>")
	next.Expires = epoch.Add(2 * time.Hour)
	got, err := s.Replace(ctx, next, p.Rev)
	if err != nil {
		t.Fatalf("Replace: %v", err)
	}
	if got.Rev <= p.Rev {
		t.Fatalf("Replace rev %d, want > %d", got.Rev, p.Rev)
	}
	next.Rev = got.Rev
	samePub(t, got, next)
	stored, err := s.Get(ctx, p.ID)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	samePub(t, stored, next)
	if _, err := s.FindByETag(ctx, p.Resource, p.ETag); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("old ETag still found: %v", err)
	}
	if _, err := s.FindByETag(ctx, p.Resource, next.ETag); err != nil {
		t.Fatalf("new ETag not found: %v", err)
	}
	// The loser of a race read the old revision.
	late := next
	late.ETag = "etag-late-" + p.ID
	if _, err := s.Replace(ctx, late, p.Rev); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("stale rev: err %v, want ErrConflict", err)
	}
	late.ID = "unknown"
	if _, err := s.Replace(ctx, late, 1); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unknown id: err %v, want ErrNotFound", err)
	}
}

func testDeleteCAS(t *testing.T, newStore Factory) {
	ctx := context.Background()
	s := open(t, newStore, NewClock(epoch).Now)
	p := mustCreate(t, s, pub("sip:a@x", epoch.Add(time.Hour)))
	if _, err := s.Delete(ctx, p.ID, p.Rev+7); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("Delete stale rev: err %v, want ErrConflict", err)
	}
	rev, err := s.Delete(ctx, p.ID, p.Rev)
	if err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if rev <= p.Rev {
		t.Fatalf("Delete rev %d, want > %d", rev, p.Rev)
	}
	if _, err := s.Get(ctx, p.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Get after Delete: err %v, want ErrNotFound", err)
	}
	if _, err := s.Delete(ctx, p.ID, rev); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("second Delete: err %v, want ErrNotFound", err)
	}
	q := mustCreate(t, s, pub("sip:a@x", epoch.Add(time.Hour)))
	if q.Rev <= rev {
		t.Fatalf("rev after delete %d, want > %d", q.Rev, rev)
	}
}

func testList(t *testing.T, newStore Factory) {
	ctx := context.Background()
	s := open(t, newStore, NewClock(epoch).Now)
	a1 := mustCreate(t, s, pub("sip:a@x", epoch.Add(time.Hour)))
	b1 := mustCreate(t, s, pub("sip:b@x", epoch.Add(time.Hour)))
	a2 := mustCreate(t, s, pub("sip:a@x", epoch.Add(time.Hour)))
	got, err := s.List(ctx, "sip:a@x")
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	if len(got) != 2 || got[0].ID != a1.ID || got[1].ID != a2.ID {
		t.Fatalf("List a = %v, want [%s %s]", ids(got), a1.ID, a2.ID)
	}
	all, err := s.List(ctx, "")
	if err != nil {
		t.Fatalf("List all: %v", err)
	}
	if len(all) != 3 || all[1].ID != b1.ID {
		t.Fatalf("List all = %v", ids(all))
	}
	none, err := s.List(ctx, "sip:nobody@x")
	if err != nil || len(none) != 0 {
		t.Fatalf("List nobody = %v, %v", ids(none), err)
	}
}

func ids(ps []store.Publication) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.ID
	}
	return out
}

// watch opens a Changes stream and reads through the snapshot.
func watch(t *testing.T, s store.Store, fromRev uint64) (<-chan store.Change, []store.Change) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	ch, err := s.Changes(ctx, fromRev)
	if err != nil {
		t.Fatalf("Changes: %v", err)
	}
	var snap []store.Change
	for {
		c := next(t, ch)
		if c.Kind == store.ChangeSynced {
			return ch, snap
		}
		snap = append(snap, c)
	}
}

func next(t *testing.T, ch <-chan store.Change) store.Change {
	t.Helper()
	select {
	case c, ok := <-ch:
		if !ok {
			t.Fatalf("Changes closed")
		}
		return c
	case <-time.After(5 * time.Second):
		t.Fatalf("no change within 5s")
	}
	return store.Change{}
}

func testDeleteAll(t *testing.T, newStore Factory) {
	ctx := context.Background()
	s := open(t, newStore, NewClock(epoch).Now)
	a := mustCreate(t, s, pub("sip:a@x", epoch.Add(time.Hour)))
	b := mustCreate(t, s, pub("sip:b@x", epoch.Add(time.Hour)))
	ch, _ := watch(t, s, 0)
	if err := s.DeleteAll(ctx); err != nil {
		t.Fatalf("DeleteAll: %v", err)
	}
	got := map[string]bool{}
	last := b.Rev
	for range 2 {
		c := next(t, ch)
		if c.Kind != store.ChangeDelete || c.Rev <= last {
			t.Fatalf("change %v rev %d, want delete after %d", c.Kind, c.Rev, last)
		}
		last = c.Rev
		got[c.Pub.ID] = true
	}
	if !got[a.ID] || !got[b.ID] {
		t.Fatalf("deleted %v, want %s and %s", got, a.ID, b.ID)
	}
	all, err := s.List(ctx, "")
	if err != nil || len(all) != 0 {
		t.Fatalf("List after DeleteAll = %v, %v", ids(all), err)
	}
}

func testExpireFake(t *testing.T, newStore Factory) {
	ctx := context.Background()
	clk := NewClock(epoch)
	s := open(t, newStore, clk.Now)
	short := mustCreate(t, s, pub("sip:a@x", epoch.Add(10*time.Second)))
	long := mustCreate(t, s, pub("sip:a@x", epoch.Add(time.Hour)))
	ch, _ := watch(t, s, 0)
	clk.Advance(11 * time.Second)
	// Expired state is gone for readers even before the sweep.
	if _, err := s.Get(ctx, short.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Get expired: err %v, want ErrNotFound", err)
	}
	if _, err := s.FindByETag(ctx, short.Resource, short.ETag); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("FindByETag expired: err %v, want ErrNotFound", err)
	}
	if _, err := s.Replace(ctx, short, short.Rev); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Replace expired: err %v, want ErrNotFound", err)
	}
	n, err := s.Expire(ctx)
	if err != nil || n != 1 {
		t.Fatalf("Expire = %d, %v; want 1", n, err)
	}
	c := next(t, ch)
	if c.Kind != store.ChangeExpire || c.Pub.ID != short.ID || c.Rev <= long.Rev {
		t.Fatalf("change = %v %s rev %d, want expire %s after %d", c.Kind, c.Pub.ID, c.Rev, short.ID, long.Rev)
	}
	if c.Pub.Resource != short.Resource || c.Pub.Event != short.Event {
		t.Fatalf("expire change lacks resource/event: %+v", c.Pub)
	}
	if _, err := s.Get(ctx, long.ID); err != nil {
		t.Fatalf("long-lived publication gone: %v", err)
	}
}

func testExpireTimer(t *testing.T, newStore Factory) {
	s := open(t, newStore, time.Now)
	ch, _ := watch(t, s, 0)
	p := mustCreate(t, s, pub("sip:a@x", time.Now().Add(80*time.Millisecond)))
	if c := next(t, ch); c.Kind != store.ChangePut {
		t.Fatalf("first change %v, want put", c.Kind)
	}
	c := next(t, ch)
	if c.Kind != store.ChangeExpire || c.Pub.ID != p.ID {
		t.Fatalf("change %v %s, want expire %s", c.Kind, c.Pub.ID, p.ID)
	}
}

func testChangesSnapshot(t *testing.T, newStore Factory) {
	ctx := context.Background()
	s := open(t, newStore, NewClock(epoch).Now)
	a := mustCreate(t, s, pub("sip:a@x", epoch.Add(time.Hour)))
	b := mustCreate(t, s, pub("sip:b@x", epoch.Add(time.Hour)))
	ch, snap := watch(t, s, 0)
	if len(snap) != 2 || snap[0].Pub.ID != a.ID || snap[1].Pub.ID != b.ID {
		t.Fatalf("snapshot = %+v", snap)
	}
	for _, c := range snap {
		if c.Kind != store.ChangePut {
			t.Fatalf("snapshot kind %v", c.Kind)
		}
	}
	samePub(t, snap[0].Pub, a)
	c := mustCreate(t, s, pub("sip:c@x", epoch.Add(time.Hour)))
	bb := b
	bb.ETag += "x"
	bb, err := s.Replace(ctx, bb, b.Rev)
	if err != nil {
		t.Fatalf("Replace: %v", err)
	}
	drev, err := s.Delete(ctx, a.ID, a.Rev)
	if err != nil {
		t.Fatalf("Delete: %v", err)
	}
	want := []struct {
		kind store.ChangeKind
		id   string
		rev  uint64
	}{{store.ChangePut, c.ID, c.Rev}, {store.ChangePut, b.ID, bb.Rev}, {store.ChangeDelete, a.ID, drev}}
	for i, w := range want {
		got := next(t, ch)
		if got.Kind != w.kind || got.Pub.ID != w.id || got.Rev != w.rev {
			t.Fatalf("tail[%d] = %v %s rev %d, want %v %s rev %d", i, got.Kind, got.Pub.ID, got.Rev, w.kind, w.id, w.rev)
		}
	}
}

func testChangesResume(t *testing.T, newStore Factory) {
	ctx := context.Background()
	s := open(t, newStore, NewClock(epoch).Now)
	a := mustCreate(t, s, pub("sip:a@x", epoch.Add(time.Hour)))
	b := mustCreate(t, s, pub("sip:b@x", epoch.Add(time.Hour)))
	drev, err := s.Delete(ctx, a.ID, a.Rev)
	if err != nil {
		t.Fatalf("Delete: %v", err)
	}
	// A consumer that saw everything up to a.Rev must learn of b and of
	// a's delete, either replayed or through a snapshot without a.
	_, first := watch(t, s, a.Rev)
	sawB, sawADeleted, aInSnapshot := false, false, false
	replay := false
	for _, c := range first {
		switch {
		case c.Pub.ID == b.ID:
			sawB = true
		case c.Pub.ID == a.ID && c.Kind == store.ChangeDelete && c.Rev == drev:
			sawADeleted, replay = true, true
		case c.Pub.ID == a.ID:
			aInSnapshot = true
		}
	}
	if !sawB || aInSnapshot || (replay && !sawADeleted) {
		t.Fatalf("resume from %d gave %+v", a.Rev, first)
	}
}

func testChangesCancel(t *testing.T, newStore Factory) {
	s := open(t, newStore, NewClock(epoch).Now)
	ctx, cancel := context.WithCancel(context.Background())
	ch, err := s.Changes(ctx, 0)
	if err != nil {
		t.Fatalf("Changes: %v", err)
	}
	cancel()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case _, ok := <-ch:
			if !ok {
				return
			}
		case <-deadline:
			t.Fatalf("Changes not closed after cancel")
		}
	}
}

// indexed returns s as a store.Indexed, skipping the test for stores that
// do not offer it (it is optional).
func indexed(t *testing.T, s store.Store) store.Indexed {
	t.Helper()
	ix, ok := s.(store.Indexed)
	if !ok {
		t.Skip("store does not implement store.Indexed")
	}
	return ix
}

func pubOf(resource, event, publisher string, exp time.Time) store.Publication {
	p := pub(resource, exp)
	p.Event, p.Publisher = event, publisher
	return p
}

func testIndexedCounts(t *testing.T, newStore Factory) {
	ctx := context.Background()
	clk := NewClock(epoch)
	s := open(t, newStore, clk.Now)
	ix := indexed(t, s)
	want := func(events map[string]int, resources int, publishers map[string]int) {
		t.Helper()
		c, err := ix.Counts(ctx)
		if err != nil {
			t.Fatalf("Counts: %v", err)
		}
		if c.Resources != resources || len(c.Events) != len(events) {
			t.Fatalf("Counts = %+v, want events %v resources %d", c, events, resources)
		}
		for ev, n := range events {
			if c.Events[ev] != n {
				t.Fatalf("Counts = %+v, want events %v", c, events)
			}
		}
		for p, n := range publishers {
			if got, err := ix.CountPublisher(ctx, p); err != nil || got != n {
				t.Fatalf("CountPublisher(%q) = %d, %v; want %d", p, got, err, n)
			}
		}
	}
	want(map[string]int{}, 0, map[string]int{"a": 0})
	a1 := mustCreate(t, s, pubOf("sip:a@x", "dialog", "a", epoch.Add(10*time.Second)))
	a2 := mustCreate(t, s, pubOf("sip:a@x", "presence", "a", epoch.Add(time.Hour)))
	b1 := mustCreate(t, s, pubOf("sip:b@x", "dialog", "b", epoch.Add(time.Hour)))
	want(map[string]int{"dialog": 2, "presence": 1}, 2, map[string]int{"a": 2, "b": 1})
	// Another identity modifies a2: the publisher counts follow.
	a2.Publisher = "b"
	a2, err := s.Replace(ctx, a2, a2.Rev)
	if err != nil {
		t.Fatalf("Replace: %v", err)
	}
	want(map[string]int{"dialog": 2, "presence": 1}, 2, map[string]int{"a": 1, "b": 2})
	if _, err := s.Delete(ctx, b1.ID, b1.Rev); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	want(map[string]int{"dialog": 1, "presence": 1}, 1, map[string]int{"a": 1, "b": 1})
	clk.Advance(11 * time.Second)
	if n, err := s.Expire(ctx); err != nil || n != 1 {
		t.Fatalf("Expire = %d, %v", n, err)
	}
	want(map[string]int{"presence": 1}, 1, map[string]int{"a": 0, "b": 1})
	_ = a1
	if err := s.DeleteAll(ctx); err != nil {
		t.Fatalf("DeleteAll: %v", err)
	}
	want(map[string]int{}, 0, map[string]int{"a": 0, "b": 0})
}

func testIndexedResources(t *testing.T, newStore Factory) {
	ctx := context.Background()
	clk := NewClock(epoch)
	s := open(t, newStore, clk.Now)
	ix := indexed(t, s)
	for _, r := range []string{"sip:d@x", "sip:b@x", "sip:a@x", "sip:c@x", "sip:e@x"} {
		mustCreate(t, s, pubOf(r, "dialog", "p", epoch.Add(time.Hour)))
		mustCreate(t, s, pubOf(r, "presence", "p", epoch.Add(time.Hour)))
	}
	mustCreate(t, s, pubOf("sip:bb@x", "dialog", "p", epoch.Add(time.Second))) // expires before the reads
	clk.Advance(2 * time.Second)
	for _, tc := range []struct {
		after         string
		offset, limit int
		want          string
	}{
		{"", 0, 2, "sip:a@x sip:b@x"},
		{"", 2, 2, "sip:c@x sip:d@x"},
		{"", 4, 2, "sip:e@x"},
		{"", 5, 2, ""},
		{"sip:b@x", 0, 10, "sip:c@x sip:d@x sip:e@x"},
		{"sip:b@x", 1, 1, "sip:d@x"},
	} {
		got, err := ix.Resources(ctx, tc.after, tc.offset, tc.limit)
		if err != nil || fmt.Sprint(got) != "["+tc.want+"]" {
			t.Fatalf("Resources(%q, %d, %d) = %v, %v; want [%s]", tc.after, tc.offset, tc.limit, got, err, tc.want)
		}
	}
}

func testIndexedListAtWatch(t *testing.T, newStore Factory) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s := open(t, newStore, NewClock(epoch).Now)
	ix := indexed(t, s)
	a := mustCreate(t, s, pub("sip:a@x", epoch.Add(time.Hour)))
	b := mustCreate(t, s, pub("sip:b@x", epoch.Add(time.Hour)))
	ch, err := ix.Watch(ctx)
	if err != nil {
		t.Fatalf("Watch: %v", err)
	}
	if c := next(t, ch); c.Kind != store.ChangeSynced || c.Rev != b.Rev {
		t.Fatalf("first change %v rev %d, want synced at %d (no snapshot)", c.Kind, c.Rev, b.Rev)
	}
	ps, rev, err := ix.ListAt(ctx, "sip:a@x")
	if err != nil || len(ps) != 1 || ps[0].ID != a.ID || rev != b.Rev {
		t.Fatalf("ListAt = %v at %d, %v; want [%s] at %d", ids(ps), rev, err, a.ID, b.Rev)
	}
	a2 := a
	a2.ETag = "etag-next-" + a.ID
	a2, err = s.Replace(ctx, a2, a.Rev)
	if err != nil {
		t.Fatalf("Replace: %v", err)
	}
	if c := next(t, ch); c.Kind != store.ChangePut || c.Rev != a2.Rev || c.Pub.ETag != a2.ETag {
		t.Fatalf("change %v rev %d, want the put at %d", c.Kind, c.Rev, a2.Rev)
	}
	ps, rev, err = ix.ListAt(ctx, "sip:a@x")
	if err != nil || len(ps) != 1 || ps[0].Rev != a2.Rev || rev != a2.Rev {
		t.Fatalf("ListAt after the put = %v at %d, %v; want rev %d", ps, rev, err, a2.Rev)
	}
	// A delete is the newest revision: ListAt reports it too.
	drev, err := s.Delete(ctx, b.ID, b.Rev)
	if err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if _, rev, err = ix.ListAt(ctx, "sip:a@x"); err != nil || rev != drev {
		t.Fatalf("ListAt after a delete: rev %d, %v; want %d", rev, err, drev)
	}
}

func testIndexedDeletePrefix(t *testing.T, newStore Factory) {
	ctx := context.Background()
	clk := NewClock(epoch)
	s := open(t, newStore, clk.Now)
	ix := indexed(t, s)
	if n, err := ix.DeletePublisherPrefix(ctx, "reg:"); err != nil || n != 0 {
		t.Fatalf("DeletePublisherPrefix on an empty store = %d, %v", n, err)
	}
	r1 := mustCreate(t, s, pubOf("sip:a@x", "presence", "reg:sip:a@x", epoch.Add(time.Hour)))
	keep := mustCreate(t, s, pubOf("sip:a@x", "dialog", "reg", epoch.Add(time.Hour)))
	r2 := mustCreate(t, s, pubOf("sip:b@x", "presence", "reg:sip:b@x", epoch.Add(5*time.Second)))
	clk.Advance(10 * time.Second) // r2 expired, not swept: removed too
	ch, _ := watch(t, s, 0)
	n, err := ix.DeletePublisherPrefix(ctx, "reg:")
	if err != nil || n != 2 {
		t.Fatalf("DeletePublisherPrefix = %d, %v; want 2", n, err)
	}
	got := map[string]bool{}
	last := r2.Rev
	for range 2 {
		c := next(t, ch)
		if c.Kind != store.ChangeDelete || c.Rev <= last {
			t.Fatalf("change %v rev %d, want a delete after %d", c.Kind, c.Rev, last)
		}
		last = c.Rev
		got[c.Pub.ID] = true
	}
	if !got[r1.ID] || !got[r2.ID] {
		t.Fatalf("deleted %v, want %s and %s", got, r1.ID, r2.ID)
	}
	all, err := s.List(ctx, "")
	if err != nil || len(all) != 1 || all[0].ID != keep.ID {
		t.Fatalf("List = %v, %v; want only %s", ids(all), err, keep.ID)
	}
	if c, err := ix.Counts(ctx); err != nil || c.Events["presence"] != 0 || c.Resources != 1 {
		t.Fatalf("Counts = %+v, %v", c, err)
	}
}

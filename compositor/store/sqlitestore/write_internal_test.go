package sqlitestore

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/presencehub/presencehub/compositor/store"
)

// TestCommit_OneBatch_LoserFailsAloneOthersCommit drives one group commit
// directly: the compare-and-swap losers in the batch fail on their own,
// take no revision, and every other op commits in the same transaction.
func TestCommit_OneBatch_LoserFailsAloneOthersCommit(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, filepath.Join(t.TempDir(), "b.db"), Options{})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer s.Close()
	exp := time.Now().Add(time.Hour)
	mk := func(id, etag string) store.Publication {
		return store.Publication{ID: id, Resource: "sip:a@x", Event: "presence", ETag: etag,
			Expires: exp, Created: exp, Updated: exp, ContentType: "application/pidf+xml", Body: []byte("b")}
	}
	a, err := s.Create(ctx, mk("a", "ea"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.Create(ctx, mk("b", "eb"))
	if err != nil {
		t.Fatal(err)
	}
	feedCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	feed, err := s.Changes(feedCtx, b.Rev)
	if err != nil {
		t.Fatal(err)
	}
	<-feed // synced

	op := func(kind opKind, p store.Publication, id string, ifRev uint64) *writeOp {
		return &writeOp{kind: kind, ctx: ctx, p: p, id: id, ifRev: ifRev, done: make(chan signal, 1)}
	}
	ops := []*writeOp{
		op(opReplace, mk("a", "ea2"), "", a.Rev),   // wins: rev b+1
		op(opReplace, mk("a", "ea3"), "", a.Rev),   // same read, loses the race
		op(opCreate, mk("c", "eb"), "", 0),         // duplicate entity-tag
		op(opCreate, mk("d", "ed"), "", 0),         // wins: rev b+2
		op(opDelete, store.Publication{}, "b", 99), // stale
		op(opDelete, store.Publication{}, "b", b.Rev),
		op(opReplace, mk("zz", "ez"), "", 1), // unknown
	}
	s.wq.mu.Lock()
	s.wq.leader = true // keep submitters out while we lead by hand
	s.wq.mu.Unlock()
	s.commit(&batch{}, ops, nil)
	s.wq.mu.Lock()
	s.wq.leader = false
	s.wq.mu.Unlock()

	wantErr := []error{nil, store.ErrConflict, store.ErrConflict, nil, store.ErrConflict, nil, store.ErrNotFound}
	wantRev := []uint64{b.Rev + 1, 0, 0, b.Rev + 2, 0, b.Rev + 3, 0}
	for i, o := range ops {
		if <-o.done != sigDone {
			t.Fatalf("op %d not answered", i)
		}
		if !errors.Is(o.err, wantErr[i]) || (wantErr[i] == nil) != (o.err == nil) {
			t.Errorf("op %d: err %v, want %v", i, o.err, wantErr[i])
		}
		got := o.res.Rev
		if o.kind == opDelete {
			got = o.rev
		}
		if o.err == nil && got != wantRev[i] {
			t.Errorf("op %d: rev %d, want %d", i, got, wantRev[i])
		}
	}
	for _, want := range []uint64{b.Rev + 1, b.Rev + 2, b.Rev + 3} {
		if c := <-feed; c.Rev != want {
			t.Fatalf("feed rev %d, want %d", c.Rev, want)
		}
	}
	if p, err := s.Get(ctx, "a"); err != nil || p.ETag != "ea2" {
		t.Fatalf("a = %+v, %v; want etag ea2", p, err)
	}
	if _, err := s.Get(ctx, "b"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("b not deleted: %v", err)
	}
	if _, err := s.Get(ctx, "c"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("c stored despite duplicate entity-tag: %v", err)
	}
	// The delete's revision survives a restart (store_rev).
	if got := s.rev; got != b.Rev+3 {
		t.Fatalf("store rev %d, want %d", got, b.Rev+3)
	}
}

// TestReopen_StoreRevisionIsTheLastCommittedWrite: whatever the last commit
// was (one write on its own, a batch, a delete, a write that lost its
// compare-and-swap), the revision read at start-up is the last one handed
// out, so revisions never go back across a restart.
func TestReopen_StoreRevisionIsTheLastCommittedWrite(t *testing.T) {
	exp := time.Now().Add(time.Hour)
	mk := func(id, etag string) store.Publication {
		return store.Publication{ID: id, Resource: "sip:a@x", Event: "presence", ETag: etag,
			Expires: exp, Created: exp, Updated: exp, ContentType: "application/pidf+xml", Body: []byte("b")}
	}
	type state struct{ a, b store.Publication }
	for _, tc := range []struct {
		name string
		last func(t *testing.T, s *Store, st state)
	}{
		{"one create", func(t *testing.T, s *Store, _ state) {
			if _, err := s.Create(context.Background(), mk("c", "ec")); err != nil {
				t.Fatal(err)
			}
		}},
		{"one replace", func(t *testing.T, s *Store, st state) {
			if _, err := s.Replace(context.Background(), mk("a", "ea2"), st.a.Rev); err != nil {
				t.Fatal(err)
			}
		}},
		{"one delete", func(t *testing.T, s *Store, st state) {
			if _, err := s.Delete(context.Background(), "b", st.b.Rev); err != nil {
				t.Fatal(err)
			}
		}},
		{"a replace that lost, after a delete", func(t *testing.T, s *Store, st state) {
			if _, err := s.Delete(context.Background(), "b", st.b.Rev); err != nil {
				t.Fatal(err)
			}
			if _, err := s.Replace(context.Background(), mk("a", "ea2"), st.a.Rev-1); !errors.Is(err, store.ErrConflict) {
				t.Fatalf("stale replace: %v, want conflict", err)
			}
		}},
		{"a batch ending with a replace", func(t *testing.T, s *Store, st state) {
			commitByHand(t, s, []*writeOp{
				{kind: opDelete, ctx: context.Background(), id: "b", ifRev: st.b.Rev, done: make(chan signal, 1)},
				{kind: opReplace, ctx: context.Background(), p: mk("a", "ea2"), ifRev: st.a.Rev, done: make(chan signal, 1)},
			})
		}},
		{"a batch ending with a delete", func(t *testing.T, s *Store, st state) {
			commitByHand(t, s, []*writeOp{
				{kind: opReplace, ctx: context.Background(), p: mk("a", "ea2"), ifRev: st.a.Rev, done: make(chan signal, 1)},
				{kind: opDelete, ctx: context.Background(), id: "b", ifRev: st.b.Rev, done: make(chan signal, 1)},
			})
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			path := filepath.Join(t.TempDir(), "r.db")
			s, err := Open(ctx, path, Options{})
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			var st state
			if st.a, err = s.Create(ctx, mk("a", "ea")); err != nil {
				t.Fatal(err)
			}
			if st.b, err = s.Create(ctx, mk("b", "eb")); err != nil {
				t.Fatal(err)
			}
			tc.last(t, s, st)
			want := s.rev
			if err := s.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			s, err = Open(ctx, path, Options{})
			if err != nil {
				t.Fatalf("reopen: %v", err)
			}
			defer s.Close()
			if s.rev != want || want <= st.b.Rev {
				t.Fatalf("revision after reopen %d, want %d (> %d)", s.rev, want, st.b.Rev)
			}
		})
	}
}

// commitByHand runs ops as one group commit and fails the test on any op's error.
func commitByHand(t *testing.T, s *Store, ops []*writeOp) {
	t.Helper()
	s.wq.mu.Lock()
	s.wq.leader = true // keep submitters out while we lead by hand
	s.wq.mu.Unlock()
	s.commit(&batch{}, ops, nil)
	s.wq.mu.Lock()
	s.wq.leader = false
	s.wq.mu.Unlock()
	for i, o := range ops {
		<-o.done
		if o.err != nil {
			t.Fatalf("op %d: %v", i, o.err)
		}
	}
}

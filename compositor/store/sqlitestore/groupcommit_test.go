package sqlitestore_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/presencehub/presencehub/compositor/store"
	"github.com/presencehub/presencehub/compositor/store/sqlitestore"
)

// acked is one write the store answered with success.
type acked struct {
	kind store.ChangeKind // ChangePut or ChangeDelete
	rev  uint64
	pub  store.Publication
}

// TestGroupCommit_ConcurrentWriters_CASAndAckedDurable runs many writers
// that race on a few publications (so group commits mix winners and
// compare-and-swap losers) and checks: every loser got ErrConflict or
// ErrNotFound and changed nothing; the winners' revisions are exactly
// the store's next revisions, without gaps or duplicates; the change feed
// carries them in order; and after reopening, each publication is what
// its last acked write left.
func TestGroupCommit_ConcurrentWriters_CASAndAckedDurable(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "gc.db")
	s, err := sqlitestore.Open(ctx, path, sqlitestore.Options{})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	const nPubs, writers, iters = 12, 16, 60
	exp := time.Now().Add(time.Hour).Truncate(time.Millisecond)
	mk := func(id string, n int) store.Publication {
		return store.Publication{ID: id, Resource: "sip:" + id + "@x", Event: "presence",
			ETag: fmt.Sprintf("%s-e%d", id, n), Expires: exp, Created: exp, Updated: exp,
			ContentType: "application/pidf+xml", Body: []byte(fmt.Sprintf("<b>%d</b>", n)), Publisher: "t"}
	}
	var startRev uint64
	for i := range nPubs {
		p, err := s.Create(ctx, mk(fmt.Sprintf("p%d", i), 0))
		if err != nil {
			t.Fatalf("Create: %v", err)
		}
		startRev = p.Rev
	}
	feedCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	feed, err := s.Changes(feedCtx, startRev)
	if err != nil {
		t.Fatalf("Changes: %v", err)
	}
	if c := <-feed; c.Kind != store.ChangeSynced || c.Rev != startRev {
		t.Fatalf("first change %v rev %d, want synced %d", c.Kind, c.Rev, startRev)
	}

	var mu sync.Mutex
	var wins []acked
	losses := 0
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 7))
			for i := range iters {
				id := fmt.Sprintf("p%d", rng.IntN(nPubs))
				n := w*1000 + i + 1
				cur, err := s.Get(ctx, id)
				var a acked
				switch {
				case errors.Is(err, store.ErrNotFound): // deleted: bring it back
					a.kind = store.ChangePut
					a.pub, err = s.Create(ctx, mk(id, n))
					a.rev = a.pub.Rev
				case err != nil:
					t.Errorf("Get: %v", err)
					return
				case i%7 == 3:
					a.kind = store.ChangeDelete
					a.pub = cur
					a.rev, err = s.Delete(ctx, id, cur.Rev)
				default:
					ifRev := cur.Rev
					if i%5 == 4 {
						ifRev-- // a stale read: must lose
					}
					a.kind = store.ChangePut
					a.pub, err = s.Replace(ctx, mk(id, n), ifRev)
					a.rev = a.pub.Rev
					if err == nil && ifRev != cur.Rev {
						t.Errorf("Replace %s with stale rev %d succeeded", id, ifRev)
					}
				}
				mu.Lock()
				if err == nil {
					wins = append(wins, a)
				} else if errors.Is(err, store.ErrConflict) || errors.Is(err, store.ErrNotFound) {
					losses++
				} else {
					t.Errorf("write %s: %v", id, err)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	if losses == 0 || len(wins) == 0 {
		t.Fatalf("wins %d, losses %d: the test did not race", len(wins), losses)
	}
	t.Logf("%d acked, %d lost compare-and-swap", len(wins), losses)

	// Winners hold exactly the revisions after startRev, once each.
	slices.SortFunc(wins, func(a, b acked) int { return int(a.rev) - int(b.rev) })
	for i, a := range wins {
		if want := startRev + uint64(i) + 1; a.rev != want {
			t.Fatalf("acked revision #%d is %d, want %d (gap or duplicate)", i, a.rev, want)
		}
	}
	// The feed has them, in revision order.
	for _, a := range wins {
		select {
		case c := <-feed:
			if c.Rev != a.rev || c.Kind != a.kind || c.Pub.ID != a.pub.ID {
				t.Fatalf("feed: %v %s rev %d, want %v %s rev %d", c.Kind, c.Pub.ID, c.Rev, a.kind, a.pub.ID, a.rev)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("feed: rev %d missing", a.rev)
		}
	}
	last := map[string]acked{}
	for _, a := range wins {
		last[a.pub.ID] = a
	}
	cancel()
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	s, err = sqlitestore.Open(ctx, path, sqlitestore.Options{})
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer s.Close()
	for id, a := range last {
		got, err := s.Get(ctx, id)
		if a.kind == store.ChangeDelete {
			if !errors.Is(err, store.ErrNotFound) {
				t.Errorf("%s: last acked write deleted it, Get = %+v, %v", id, got, err)
			}
			continue
		}
		if err != nil || got.Rev != a.rev || got.ETag != a.pub.ETag || string(got.Body) != string(a.pub.Body) {
			t.Errorf("%s after reopen = %+v, %v; want rev %d etag %s", id, got, err, a.rev, a.pub.ETag)
		}
	}
	// Revisions go on after the newest acked one.
	p, err := s.Create(ctx, mk("fresh", 1))
	if err != nil || p.Rev != wins[len(wins)-1].rev+1 {
		t.Fatalf("Create after reopen: rev %d, %v; want %d", p.Rev, err, wins[len(wins)-1].rev+1)
	}
}

// TestGroupCommit_CanceledBeforeCommit_ChangesNothing: a write whose ctx
// ended before it ran is refused and not stored.
func TestGroupCommit_CanceledBeforeCommit_ChangesNothing(t *testing.T) {
	s, err := sqlitestore.Open(context.Background(), filepath.Join(t.TempDir(), "c.db"), sqlitestore.Options{})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer s.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	p := benchPub("c1")
	if _, err := s.Create(ctx, p); !errors.Is(err, context.Canceled) {
		t.Fatalf("Create with canceled ctx: %v, want context.Canceled", err)
	}
	if _, err := s.Get(context.Background(), p.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("canceled Create stored: %v", err)
	}
}

// TestCheckpoint_WALStaysBounded: the background checkpointer must let the
// WAL start over while writes go on (a purely concurrent checkpoint never
// catches up with a busy writer, and the WAL would grow without bound).
func TestCheckpoint_WALStaysBounded(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "w.db")
	s, err := sqlitestore.Open(ctx, path, sqlitestore.Options{})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer s.Close()
	const n = 4000 // ~20k WAL pages (80 MB) if never checkpointed
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += 4 {
				if _, err := s.Create(ctx, benchPub(fmt.Sprintf("w%d", i))); err != nil {
					t.Errorf("Create: %v", err)
					return
				}
			}
		}()
	}
	wg.Wait()
	fi, err := os.Stat(path + "-wal")
	if err != nil {
		t.Fatalf("stat WAL: %v", err)
	}
	t.Logf("WAL %.1f MB after %d writes", float64(fi.Size())/(1<<20), n)
	if fi.Size() > 32<<20 {
		t.Fatalf("WAL is %d MB after %d writes; checkpoints do not keep up", fi.Size()>>20, n)
	}
}

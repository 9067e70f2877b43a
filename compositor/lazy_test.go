package compositor_test

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/presencehub/presencehub/compositor"
	"github.com/presencehub/presencehub/compositor/store"
	"github.com/presencehub/presencehub/compositor/store/sqlitestore"
)

// countingStore is an Indexed store that counts how the compositor reads it.
type countingStore struct {
	*sqlitestore.Store
	listAll, listAt, changes atomic.Int64
}

func (s *countingStore) List(ctx context.Context, resource string) ([]store.Publication, error) {
	if resource == "" {
		s.listAll.Add(1)
	}
	return s.Store.List(ctx, resource)
}

func (s *countingStore) ListAt(ctx context.Context, resource string) ([]store.Publication, uint64, error) {
	s.listAt.Add(1)
	return s.Store.ListAt(ctx, resource)
}

func (s *countingStore) Changes(ctx context.Context, fromRev uint64) (<-chan store.Change, error) {
	s.changes.Add(1)
	return s.Store.Changes(ctx, fromRev)
}

// slowStore answers ListAt late, as a busy disk would: the change feed
// moves on between the read and the load.
type slowStore struct{ *sqlitestore.Store }

func (s slowStore) ListAt(ctx context.Context, resource string) ([]store.Publication, uint64, error) {
	ps, rev, err := s.Store.ListAt(ctx, resource)
	time.Sleep(3 * time.Millisecond)
	return ps, rev, err
}

// eagerStore hides store.Indexed: the compositor loads everything at start.
type eagerStore struct{ store.Store }

func openSQLite(t *testing.T, path string) *sqlitestore.Store {
	t.Helper()
	s, err := sqlitestore.Open(context.Background(), path, sqlitestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func newComp(t *testing.T, s compositor.Store) *compositor.Compositor {
	t.Helper()
	c, err := compositor.New(context.Background(), compositor.Config{Store: s})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func ext(i int) string { return fmt.Sprintf("sip:%d@hub.test", 2000+i) }

func dialogPub(resource, state string, etag string) compositor.PublishRequest {
	r := compositor.PublishRequest{Resource: resource, Event: "dialog", Expires: 600,
		ContentType: "application/dialog-info+xml", Body: dialogBody(resource, "d1="+state), Publisher: "pbx"}
	if etag != "" {
		r.IfMatch = []string{etag}
	}
	return r
}

// Start-up reads nothing but the change feed's position; a resource is read
// from the store once, when it is first asked for, with what was stored.
func TestLazy_StartReadsNothing_FirstViewLoadsStoredState(t *testing.T) {
	path := filepath.Join(t.TempDir(), "lazy.db")
	ctx := context.Background()
	{
		s, err := sqlitestore.Open(ctx, path, sqlitestore.Options{})
		if err != nil {
			t.Fatal(err)
		}
		w, err := compositor.New(ctx, compositor.Config{Store: s})
		if err != nil {
			t.Fatal(err)
		}
		for i := range 50 {
			if _, err := w.Publish(ctx, dialogPub(ext(i), "confirmed", "")); err != nil {
				t.Fatal(err)
			}
		}
		w.Close()
		s.Close()
	}
	cs := &countingStore{Store: openSQLite(t, path)}
	c := newComp(t, cs)
	if n, a, ch := cs.listAll.Load(), cs.listAt.Load(), cs.changes.Load(); n+a+ch != 0 {
		t.Fatalf("start-up read the store: %d full lists, %d resource reads, %d snapshots; want none", n, a, ch)
	}
	for _, i := range []int{7, 7, 42} {
		v := c.View(ext(i), "dialog")
		if len(v.Dialogs) != 1 || v.Dialogs[0].ID != "d1" || v.Dialogs[0].State != "confirmed" {
			t.Fatalf("View(%s) = %+v, want the stored confirmed dialog", ext(i), v.Dialogs)
		}
	}
	if got := cs.listAt.Load(); got != 2 {
		t.Fatalf("%d resource reads for views of two resources, want 2 (once each)", got)
	}
	if p := c.View(ext(3), "presence"); len(p.Presence.Tuples) != 1 || p.Presence.Tuples[0].Basic != "closed" {
		t.Fatalf("presence of a resource with only dialog state = %+v, want closed", p.Presence.Tuples)
	}
	if n := cs.listAll.Load(); n != 0 {
		t.Fatalf("%d full lists", n)
	}
}

// Two compositors on one store (two nodes, or a hub and an admin tool):
// each emits changes only for resources it has in memory, and a resource
// loaded while the other writes converges on the final state, whatever the
// moment of the load (the load races the change feed).
func TestLazy_LoadRacingAnotherWriter_ConvergesOnFinalState(t *testing.T) {
	for _, mode := range []string{"lazy", "eager"} {
		t.Run(mode, func(t *testing.T) {
			ctx := context.Background()
			s := openSQLite(t, filepath.Join(t.TempDir(), "two.db"))
			w := newComp(t, s)
			var rs compositor.Store = slowStore{s}
			if mode == "eager" {
				rs = eagerStore{s}
			}
			r := newComp(t, rs)
			var mu sync.Mutex
			emitted := map[string]int{}
			r.Subscribe(func(ch compositor.Change) {
				mu.Lock()
				emitted[ch.View.Resource]++
				mu.Unlock()
			})

			const resources, rounds = 20, 15
			etags := make([]string, resources)
			states := []string{"early", "confirmed", "proceeding"}
			var wg sync.WaitGroup
			wg.Go(func() {
				for round := range rounds {
					for i := range resources {
						res, err := w.Publish(ctx, dialogPub(ext(i), states[round%len(states)], etags[i]))
						if err != nil {
							t.Error(err)
							return
						}
						etags[i] = res.ETag
					}
				}
			})
			// Meanwhile the reader asks for the even resources at random moments.
			wg.Go(func() {
				for i := 0; i < resources; i += 2 {
					time.Sleep(time.Duration(rand.IntN(3000)) * time.Microsecond)
					r.View(ext(i), "dialog")
				}
			})
			wg.Wait()
			// The reader's feed has passed every write once a marker it
			// publishes itself comes back through it.
			marker := "sip:marker@hub.test"
			if _, err := r.Publish(ctx, dialogPub(marker, "early", "")); err != nil {
				t.Fatal(err)
			}
			deadline := time.Now().Add(5 * time.Second)
			for {
				mu.Lock()
				n := emitted[marker]
				mu.Unlock()
				if n > 0 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatal("the marker never came through the reader's feed")
				}
				time.Sleep(5 * time.Millisecond)
			}
			final := states[(rounds-1)%len(states)]
			for i := range resources {
				got, want := r.View(ext(i), "dialog"), w.View(ext(i), "dialog")
				gb, _ := got.Template()
				wb, _ := want.Template()
				if !bytes.Equal(gb, wb) || len(got.Dialogs) != 1 || got.Dialogs[0].State != final {
					t.Fatalf("%s: reader view %+v, writer view %+v; want both %s", ext(i), got.Dialogs, want.Dialogs, final)
				}
			}
			mu.Lock()
			defer mu.Unlock()
			for i := 1; i < resources; i += 2 {
				if n := emitted[ext(i)]; mode == "lazy" && n != 0 {
					t.Errorf("%s was never asked for, yet %d changes were emitted for it", ext(i), n)
				}
			}
		})
	}
}

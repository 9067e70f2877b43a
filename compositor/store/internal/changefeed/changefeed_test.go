package changefeed

import (
	"context"
	"testing"

	"github.com/presencehub/presencehub/compositor/store"
)

// A consumer that lags gets every change once, in revision order, while the
// queue wraps around and grows under it.
func TestWatch_LaggingConsumer_EveryChangeInOrder(t *testing.T) {
	f := New()
	defer f.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	changes, err := f.Watch(ctx, 0, 0, func() ([]store.Publication, error) { return nil, nil })
	if err != nil {
		t.Fatal(err)
	}
	if c := <-changes; c.Kind != store.ChangeSynced {
		t.Fatalf("first change %v, want synced", c.Kind)
	}
	const n = 20000
	rev := uint64(0)
	next := func() store.Change {
		rev++
		return store.Change{Kind: store.ChangePut, Rev: rev, Pub: store.Publication{ID: "p"}}
	}
	want := uint64(1)
	for rev < n {
		// Bursts of varying size, then read a little less than was written.
		burst := int(rev%97) + 1
		for range burst {
			f.Publish(next())
		}
		for range burst - 1 {
			c := <-changes
			if c.Rev != want {
				t.Fatalf("got revision %d, want %d", c.Rev, want)
			}
			want++
		}
	}
	for want <= n {
		if c := <-changes; c.Rev != want {
			t.Fatalf("got revision %d, want %d", c.Rev, want)
		}
		want++
	}
}

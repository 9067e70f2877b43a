package natsstore_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/presencehub/presencehub/compositor/store"
	"github.com/presencehub/presencehub/compositor/store/natsstore"
	"github.com/presencehub/presencehub/internal/natstest"
)

func newPub(id, resource string, exp time.Time) store.Publication {
	now := time.Now()
	return store.Publication{
		ID: id, Resource: resource, Event: "presence", ETag: "etag-" + id,
		Expires: exp, Created: now, Updated: now,
		ContentType: "application/pidf+xml", Body: []byte("<presence/>"), Publisher: "1001",
	}
}

func tail(t *testing.T, s store.Store) <-chan store.Change {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	ch, err := s.Changes(ctx, 0)
	if err != nil {
		t.Fatalf("Changes: %v", err)
	}
	for c := range ch {
		if c.Kind == store.ChangeSynced {
			return ch
		}
	}
	t.Fatalf("Changes closed before synced")
	return nil
}

func nextChange(t *testing.T, ch <-chan store.Change, within time.Duration) store.Change {
	t.Helper()
	select {
	case c, ok := <-ch:
		if !ok {
			t.Fatalf("Changes closed")
		}
		return c
	case <-time.After(within):
		t.Fatalf("no change within %v", within)
	}
	return store.Change{}
}

// node opens a store whose connection prefers server i of the cluster
// (it fails over to the others).
func node(t *testing.T, c *natstest.Cluster, i int, bucket string) *natsstore.Store {
	t.Helper()
	s := open(t, connect(t, c.ServerURL(i)+","+c.URL()), bucket, time.Now)
	t.Cleanup(func() { s.Close() })
	return s
}

// Two hubs, each with its own connection to a different server of the
// cluster, share one bucket.
func twoNodes(t *testing.T, c *natstest.Cluster, bucket string) (*natsstore.Store, *natsstore.Store) {
	t.Helper()
	return node(t, c, 0, bucket), node(t, c, 1, bucket)
}

func TestCluster_WriteOnOneNode_IsReadAndStreamedOnTheOther(t *testing.T) {
	c := natstest.Start(t, 3)
	a, b := twoNodes(t, c, "share")
	ctx := context.Background()
	bch := tail(t, b)
	p, err := a.Create(ctx, newPub("p1", "sip:1001@example.com", time.Now().Add(time.Hour)))
	if err != nil {
		t.Fatalf("Create on A: %v", err)
	}
	// A read on B right after A's write finds it (B catches up on a miss).
	got, err := b.FindByETag(ctx, p.Resource, p.ETag)
	if err != nil || got.Rev != p.Rev {
		t.Fatalf("FindByETag on B = %+v, %v; want rev %d", got, err, p.Rev)
	}
	if ch := nextChange(t, bch, 5*time.Second); ch.Kind != store.ChangePut || ch.Pub.ID != p.ID || ch.Rev != p.Rev {
		t.Fatalf("B streamed %v %s rev %d, want put %s rev %d", ch.Kind, ch.Pub.ID, ch.Rev, p.ID, p.Rev)
	}
	// Both nodes race to replace the same revision: exactly one wins, the
	// other gets ErrConflict (SIP 412).
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, s := range []store.Store{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			q := p
			q.ETag = fmt.Sprintf("etag-race-%d", i)
			_, errs[i] = s.Replace(ctx, q, p.Rev)
		}()
	}
	wg.Wait()
	wins, conflicts := 0, 0
	for _, err := range errs {
		switch {
		case err == nil:
			wins++
		case errors.Is(err, store.ErrConflict):
			conflicts++
		default:
			t.Fatalf("Replace race: %v", err)
		}
	}
	if wins != 1 || conflicts != 1 {
		t.Fatalf("race: %d wins, %d conflicts (%v); want 1 and 1", wins, conflicts, errs)
	}
}

func TestCluster_TTLExpiry_SeenOnceByEveryNode(t *testing.T) {
	c := natstest.Start(t, 3)
	a, b := twoNodes(t, c, "expiry")
	ach, bch := tail(t, a), tail(t, b)
	p, err := a.Create(context.Background(), newPub("short", "sip:1002@example.com", time.Now().Add(500*time.Millisecond)))
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	for name, ch := range map[string]<-chan store.Change{"A": ach, "B": bch} {
		if c := nextChange(t, ch, 5*time.Second); c.Kind != store.ChangePut || c.Pub.ID != p.ID {
			t.Fatalf("%s: first change %v %s, want put", name, c.Kind, c.Pub.ID)
		}
		c := nextChange(t, ch, 5*time.Second)
		if c.Kind != store.ChangeExpire || c.Pub.ID != p.ID || c.Pub.Resource != p.Resource || c.Rev <= p.Rev {
			t.Fatalf("%s: change %v %s rev %d, want expire of %s after %d", name, c.Kind, c.Pub.ID, c.Rev, p.ID, p.Rev)
		}
	}
	// Once: no second expiry (nor anything else) follows.
	select {
	case c := <-ach:
		t.Fatalf("A: extra change %v %s", c.Kind, c.Pub.ID)
	case c := <-bch:
		t.Fatalf("B: extra change %v %s", c.Kind, c.Pub.ID)
	case <-time.After(1500 * time.Millisecond):
	}
	if n, err := b.Expire(context.Background()); err != nil || n != 0 {
		t.Fatalf("Expire after the server's expiry = %d, %v; want 0", n, err)
	}
}

// The server leading the bucket's stream is stopped while a writer keeps
// writing (an embedded server hands its leaderships over as it shuts down,
// so this is the quick election; after a crash the peers wait for the raft
// election timeout, 4-9 s, and writes meanwhile are ErrBusy): writes are delayed or fail with ErrBusy (never
// ErrConflict, never a silent loss) until a new leader is elected, every
// acknowledged write is there afterwards, and the other node's stream ends
// on the last state.
func TestCluster_LeaderKilled_NoAcknowledgedWriteLost(t *testing.T) {
	c := natstest.Start(t, 3)
	ctx := context.Background()
	setup := node(t, c, 0, "leaderkill")
	leader := c.StreamLeader("KV_leaderkill")
	if leader < 0 {
		t.Fatalf("no stream leader")
	}
	// The hubs' connections stay off the leader: the kill only costs the
	// stream its leader (a hub losing its own server is the next test).
	a := node(t, c, (leader+1)%3, "leaderkill")
	b := node(t, c, (leader+2)%3, "leaderkill")
	setup.Close()
	p, err := a.Create(ctx, newPub("lk", "sip:1003@example.com", time.Now().Add(time.Hour)))
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	bch := tail(t, b)
	var (
		last     = p
		acked    int
		busy     int
		slowest  time.Duration
		stallEnd time.Time
	)
	const killAt, total = 20, 60
	var killed time.Time
	for i := 0; acked < total; i++ {
		if i > 2000 {
			t.Fatalf("only %d writes acknowledged; %d busy", acked, busy)
		}
		if acked == killAt && killed.IsZero() {
			killed = time.Now()
			c.Stop(leader)
		}
		q := last
		q.ETag = fmt.Sprintf("etag-lk-%d", i)
		start := time.Now()
		wctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		got, err := a.Replace(wctx, q, last.Rev)
		cancel()
		switch {
		case err == nil:
			last = got
			acked++
			if d := time.Since(start); d > slowest {
				slowest = d
			}
			if stallEnd.IsZero() && !killed.IsZero() {
				stallEnd = time.Now()
			}
		case errors.Is(err, store.ErrBusy):
			busy++
			time.Sleep(50 * time.Millisecond)
		default:
			t.Fatalf("write %d: %v (want success or ErrBusy)", i, err)
		}
	}
	t.Logf("stream leader n%d shut down: write stall %v (first acknowledged write after the kill), %d writes answered busy, slowest acknowledged write %v",
		leader+1, stallEnd.Sub(killed).Round(time.Millisecond), busy, slowest.Round(time.Millisecond))
	waitRev(t, bch, last.Rev)
	got, err := b.Get(ctx, p.ID)
	if err != nil || got.Rev != last.Rev || got.ETag != last.ETag {
		t.Fatalf("B reads rev %d etag %s, %v; want the last acknowledged write rev %d", got.Rev, got.ETag, err, last.Rev)
	}
}

func waitRev(t *testing.T, ch <-chan store.Change, rev uint64) {
	t.Helper()
	deadline := time.After(15 * time.Second)
	for {
		select {
		case c, ok := <-ch:
			if !ok {
				t.Fatalf("stream closed before rev %d", rev)
			}
			if c.Rev >= rev {
				return
			}
		case <-deadline:
			t.Fatalf("stream did not reach rev %d", rev)
		}
	}
}

// The server holding a hub's change-stream consumer dies: the hub's
// stream resumes at the next sequence on another server, without a gap or
// a double.
func TestCluster_ConsumerServerKilled_StreamResumesWithoutGapsOrDoubles(t *testing.T) {
	c := natstest.Start(t, 3)
	ctx := context.Background()
	a := node(t, c, 0, "resume")
	b := node(t, c, 1, "resume")
	bch := tail(t, b)
	js, err := jetstream.New(connect(t, c.URL()))
	if err != nil {
		t.Fatal(err)
	}
	ci, err := js.Consumer(ctx, "KV_resume", b.ConsumerName())
	if err != nil {
		t.Fatalf("B's consumer: %v", err)
	}
	info, err := ci.Info(ctx)
	if err != nil || info.Cluster == nil {
		t.Fatalf("consumer info: %v", err)
	}
	victim := -1
	for i := range c.Size() {
		if fmt.Sprintf("n%d", i+1) == info.Cluster.Leader {
			victim = i
		}
	}
	if victim < 0 {
		t.Fatalf("consumer on %q", info.Cluster.Leader)
	}
	const n = 40
	revs := make([]uint64, 0, n)
	for i := range n {
		if i == n/2 {
			c.Stop(victim)
		}
		var got store.Publication
		var err error
		for try := 0; try < 100; try++ {
			got, err = a.Create(ctx, newPub(fmt.Sprintf("r%d", i), "sip:1004@example.com", time.Now().Add(time.Hour)))
			if !errors.Is(err, store.ErrBusy) {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		if err != nil {
			t.Fatalf("Create %d: %v", i, err)
		}
		revs = append(revs, got.Rev)
	}
	t.Logf("%d creates acknowledged", n)
	seen := map[uint64]int{}
	deadline := time.After(20 * time.Second)
	for len(seen) < n {
		select {
		case ch := <-bch:
			if ch.Kind != store.ChangePut {
				t.Fatalf("unexpected %v %s", ch.Kind, ch.Pub.ID)
			}
			seen[ch.Rev]++
			if seen[ch.Rev] > 1 {
				t.Fatalf("rev %d delivered twice", ch.Rev)
			}
		case <-deadline:
			t.Fatalf("B saw %d of %d creates", len(seen), n)
		}
	}
	for _, r := range revs {
		if seen[r] != 1 {
			t.Fatalf("rev %d seen %d times", r, seen[r])
		}
	}
	t.Logf("B caught up: %+v", b.Stats())
	if st := b.Stats(); st.Resumes < 1 || st.Rev < revs[n-1] {
		t.Fatalf("B stats %+v: want at least one resume, rev >= %d", st, revs[n-1])
	}
}

// A write whose acknowledgement does not come in time is answered
// ErrBusy (SIP 503), and so it must end up not done even when JetStream
// stored it: the store settles it and restores the version before. (A
// write timeout of 1 ns loses every acknowledgement.)
func TestCluster_WriteAnsweredBusy_EndsUpNotDone(t *testing.T) {
	c := natstest.Start(t, 3)
	ctx := context.Background()
	a := node(t, c, 0, "doubt")
	octx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	hasty, err := natsstore.Open(octx, natsstore.Options{Conn: connect(t, c.URL()), Bucket: "doubt", Replicas: 3, WriteTimeout: time.Nanosecond})
	if err != nil {
		t.Fatal(err)
	}
	defer hasty.Close()
	p, err := a.Create(ctx, newPub("kept", "sip:1005@example.com", time.Now().Add(time.Hour)))
	if err != nil {
		t.Fatal(err)
	}
	ach := tail(t, a)
	q := p
	q.ETag, q.Body = "etag-in-doubt", []byte("<presence>in doubt</presence>")
	if _, err := hasty.Replace(ctx, q, p.Rev); !errors.Is(err, store.ErrBusy) {
		t.Fatalf("Replace with a lost acknowledgement: %v, want ErrBusy", err)
	}
	if _, err := hasty.Create(ctx, newPub("never", "sip:1005@example.com", time.Now().Add(time.Hour))); !errors.Is(err, store.ErrBusy) {
		t.Fatalf("Create with a lost acknowledgement: %v, want ErrBusy", err)
	}
	// Both were stored by the settling resend, then undone.
	deadline := time.After(10 * time.Second)
	restored, removed := false, false
	for !restored || !removed {
		select {
		case ch := <-ach:
			switch {
			case ch.Pub.ID == p.ID && ch.Kind == store.ChangePut && ch.Pub.ETag == p.ETag && ch.Rev > p.Rev:
				restored = true
			case ch.Pub.ID == "never" && ch.Kind == store.ChangeDelete:
				removed = true
			}
		case <-deadline:
			t.Fatalf("not undone within 10s: restored %v, removed %v", restored, removed)
		}
	}
	got, err := a.Get(ctx, p.ID)
	if err != nil || got.ETag != p.ETag || string(got.Body) != string(p.Body) {
		t.Fatalf("after settling: %+v, %v; want the version before the busy write", got, err)
	}
	if _, err := a.Get(ctx, "never"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("the busy create: %v, want ErrNotFound", err)
	}
}

// A hub cut off from NATS for longer than the markers live cannot learn of
// a removal by resuming (its marker is gone): it reads the bucket again
// and reports what vanished as removed.
func TestCluster_OutageLongerThanMarkers_RemovalsStillSeen(t *testing.T) {
	c := natstest.Start(t, 3)
	ctx := context.Background()
	octx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	opts := func(nc *nats.Conn) natsstore.Options {
		return natsstore.Options{Conn: nc, Bucket: "outage", Replicas: 3, MarkerTTL: time.Second}
	}
	a, err := natsstore.Open(octx, opts(connect(t, c.ServerURL(0)+","+c.URL())))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	p, err := a.Create(ctx, newPub("gone", "sip:1006@example.com", time.Now().Add(time.Hour)))
	if err != nil {
		t.Fatal(err)
	}
	// B knows one server only: it cannot fail over while that one is down.
	bc, err := nats.Connect(c.ServerURL(2), nats.IgnoreDiscoveredServers(), nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer bc.Close()
	var logs lockedBuffer
	bo := opts(bc)
	bo.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("B's log:\n%s", logs.String())
		}
	})
	b, err := natsstore.Open(octx, bo)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	bch := tail(t, b)
	c.Stop(2)
	var q store.Publication
	for try := 0; ; try++ {
		_, err = a.Delete(ctx, p.ID, p.Rev)
		if err == nil {
			break
		}
		if !errors.Is(err, store.ErrBusy) || try > 50 {
			t.Fatalf("Delete: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if q, err = a.Create(ctx, newPub("new", "sip:1006@example.com", time.Now().Add(time.Hour))); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2500 * time.Millisecond) // the delete's marker (TTL 1 s) is gone
	c.Restart(2)
	deadline := time.After(45 * time.Second) // a node restart under a loaded -race run can take a while to rejoin
	removed, added := false, false
	for !removed || !added {
		select {
		case ch := <-bch:
			switch {
			case ch.Pub.ID == p.ID && ch.Kind == store.ChangeDelete:
				removed = true
			case ch.Pub.ID == q.ID && ch.Kind == store.ChangePut:
				added = true
			}
		case <-deadline:
			t.Fatalf("after the outage: removed %v, added %v", removed, added)
		}
	}
	if _, err := b.Get(ctx, p.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("B still holds the removed publication: %v", err)
	}
	if st := b.Stats(); st.Resyncs < 1 {
		t.Fatalf("B stats %+v: want a resync", st)
	}
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

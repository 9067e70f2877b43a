package compositor_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/presencehub/presencehub/compositor"
	"github.com/presencehub/presencehub/compositor/store"
	"github.com/presencehub/presencehub/compositor/store/sqlitestore"
	"github.com/presencehub/presencehub/compositor/store/storetest"
)

const alice = "sip:1001@hub.test"

func pidfBody(entity string, tuples ...string) []byte {
	var b strings.Builder
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>` + "\n")
	fmt.Fprintf(&b, `<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="%s">`, entity)
	for _, t := range tuples {
		id, basic, _ := strings.Cut(t, "=")
		fmt.Fprintf(&b, `<tuple id="%s"><status><basic>%s</basic></status></tuple>`, id, basic)
	}
	b.WriteString(`</presence>`)
	return []byte(b.String())
}

// dialogBody takes "id=state" pairs.
func dialogBody(entity string, dialogs ...string) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, `<?xml version="1.0"?>`+"\n"+`<dialog-info xmlns="urn:ietf:params:xml:ns:dialog-info" version="0" state="full" entity="%s">`, entity)
	for _, d := range dialogs {
		id, state, _ := strings.Cut(d, "=")
		fmt.Fprintf(&b, `<dialog id="%s" call-id="c-%s" local-tag="lt-%s" direction="recipient"><state>%s</state>`+
			`<local><identity display="Ext 1001">%s</identity><target uri="%s;gr=x"/></local>`+
			`<remote><identity>sip:2002@hub.test</identity></remote></dialog>`, id, id, id, state, entity, entity)
	}
	b.WriteString(`</dialog-info>`)
	return []byte(b.String())
}

type harness struct {
	t     *testing.T
	clk   *storetest.Clock
	path  string
	store *sqlitestore.Store
	c     *compositor.Compositor
	mu    sync.Mutex
	seen  []compositor.Change
	wake  chan struct{}
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	h := &harness{t: t, clk: storetest.NewClock(time.Date(2030, 5, 6, 7, 8, 9, 0, time.UTC)),
		path: filepath.Join(t.TempDir(), "esc.db"), wake: make(chan struct{}, 1)}
	h.open()
	t.Cleanup(h.close)
	return h
}

func (h *harness) open() {
	h.t.Helper()
	s, err := sqlitestore.Open(context.Background(), h.path, sqlitestore.Options{Now: h.clk.Now})
	if err != nil {
		h.t.Fatalf("sqlitestore.Open: %v", err)
	}
	h.store = s
	h.openWith(s)
}

func (h *harness) openWith(s compositor.Store) {
	h.t.Helper()
	c, err := compositor.New(context.Background(), compositor.Config{Store: s, Now: h.clk.Now})
	if err != nil {
		h.t.Fatalf("compositor.New: %v", err)
	}
	h.c = c
	c.Subscribe(func(ch compositor.Change) {
		h.mu.Lock()
		h.seen = append(h.seen, ch)
		h.mu.Unlock()
		select {
		case h.wake <- struct{}{}:
		default:
		}
	})
}

func (h *harness) close() {
	if h.c != nil {
		h.c.Close()
		h.c = nil
	}
	if h.store != nil {
		h.store.Close()
		h.store = nil
	}
}

func (h *harness) publish(r compositor.PublishRequest) (compositor.PublishResult, error) {
	h.t.Helper()
	if r.Resource == "" {
		r.Resource = alice
	}
	return h.c.Publish(context.Background(), r)
}

func (h *harness) mustPublish(r compositor.PublishRequest) compositor.PublishResult {
	h.t.Helper()
	res, err := h.publish(r)
	if err != nil {
		h.t.Fatalf("Publish: %v", err)
	}
	return res
}

func presenceReq(expires int, tuples ...string) compositor.PublishRequest {
	return compositor.PublishRequest{Resource: alice, Event: "presence", Expires: expires,
		ContentType: "application/pidf+xml", Body: pidfBody(alice, tuples...), Publisher: "1001"}
}

func dialogReq(expires int, dialogs ...string) compositor.PublishRequest {
	return compositor.PublishRequest{Resource: alice, Event: "dialog", Expires: expires,
		ContentType: "application/dialog-info+xml", Body: dialogBody(alice, dialogs...), Publisher: "1001"}
}

func refreshReq(event, etag string, expires int) compositor.PublishRequest {
	return compositor.PublishRequest{Resource: alice, Event: event, IfMatch: []string{etag}, Expires: expires}
}

// waitChange waits until a change for (resource, event) satisfies ok.
func (h *harness) waitChange(event string, ok func(compositor.View) bool) compositor.View {
	h.t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		h.mu.Lock()
		for _, ch := range h.seen {
			if ch.View.Event == event && ok(ch.View) {
				h.mu.Unlock()
				return ch.View
			}
		}
		h.mu.Unlock()
		select {
		case <-h.wake:
		case <-deadline:
			h.t.Fatalf("no matching %s change within 5s", event)
		}
	}
}

// changes returns and forgets the changes seen so far, after the feed
// caught up with the store.
func (h *harness) changes() []compositor.Change {
	h.t.Helper()
	h.sync()
	h.mu.Lock()
	defer h.mu.Unlock()
	out := h.seen
	h.seen = nil
	return out
}

// sync waits until the feed has processed everything committed so far, by
// publishing a marker for another resource and waiting for its change.
func (h *harness) sync() {
	h.t.Helper()
	marker := fmt.Sprintf("sip:sync-%d@hub.test", time.Now().UnixNano())
	r := compositor.PublishRequest{Resource: marker, Event: "presence", Expires: 60,
		ContentType: "application/pidf+xml", Body: pidfBody(marker, "s=open")}
	res, err := h.c.Publish(context.Background(), r)
	if err != nil {
		h.t.Fatalf("sync publish: %v", err)
	}
	h.waitChange("presence", func(v compositor.View) bool {
		return v.Resource == marker && len(v.Presence.Tuples) == 1 && v.Presence.Tuples[0].ID == "s"
	})
	if _, err := h.c.Publish(context.Background(), compositor.PublishRequest{Resource: marker, Event: "presence", IfMatch: []string{res.ETag}, Expires: 0}); err != nil {
		h.t.Fatalf("sync unpublish: %v", err)
	}
	h.waitChange("presence", func(v compositor.View) bool { return v.Resource == marker && v.Presence.Tuples[0].ID == "none" })
	h.mu.Lock()
	kept := h.seen[:0]
	for _, ch := range h.seen {
		if ch.View.Resource != marker {
			kept = append(kept, ch)
		}
	}
	h.seen = kept
	h.mu.Unlock()
}

func sipError(t *testing.T, err error) *compositor.Error {
	t.Helper()
	var se *compositor.Error
	if !errors.As(err, &se) {
		t.Fatalf("err = %v, want *compositor.Error", err)
	}
	return se
}

// faultyStore fails writes on demand.
type faultyStore struct {
	store.Store
	mu  sync.Mutex
	err error
}

func (f *faultyStore) fail(err error) { f.mu.Lock(); f.err = err; f.mu.Unlock() }
func (f *faultyStore) failure() error { f.mu.Lock(); defer f.mu.Unlock(); return f.err }

func (f *faultyStore) Create(ctx context.Context, p store.Publication) (store.Publication, error) {
	if err := f.failure(); err != nil {
		return store.Publication{}, err
	}
	return f.Store.Create(ctx, p)
}

func (f *faultyStore) Replace(ctx context.Context, p store.Publication, rev uint64) (store.Publication, error) {
	if err := f.failure(); err != nil {
		return store.Publication{}, err
	}
	return f.Store.Replace(ctx, p, rev)
}

func (f *faultyStore) Delete(ctx context.Context, id string, rev uint64) (uint64, error) {
	if err := f.failure(); err != nil {
		return 0, err
	}
	return f.Store.Delete(ctx, id, rev)
}

package changefeed

import (
	"context"
	"sync"

	"github.com/presencehub/presencehub/compositor/store"
)

// logSize is how many recent changes are kept to resume a stream from a
// revision without a full snapshot.
const logSize = 4096

// Feed is embedded by a store. The zero value is not usable; use New.
type Feed struct {
	mu       sync.Mutex
	watchers map[*watcher]struct{}
	log      []store.Change // ring of the last logSize changes
	logStart int            // index of the oldest entry when the ring is full
	closed   bool
	wg       sync.WaitGroup
}

// New returns an empty feed.
func New() *Feed { return &Feed{watchers: make(map[*watcher]struct{})} }

type watcher struct {
	mu     sync.Mutex
	queue  []store.Change
	signal chan struct{} // cap 1: queue grew
	done   chan struct{} // closed by the feed on Close
}

// Publish hands committed changes to every watcher. The caller holds the
// store's write lock, so changes arrive in revision order.
func (f *Feed) Publish(changes ...store.Change) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, ch := range changes {
		if len(f.log) < logSize {
			f.log = append(f.log, ch)
		} else {
			f.log[f.logStart] = ch
			f.logStart = (f.logStart + 1) % logSize
		}
	}
	for w := range f.watchers {
		w.push(changes...)
	}
}

func (w *watcher) push(changes ...store.Change) {
	w.mu.Lock()
	w.queue = append(w.queue, changes...)
	w.mu.Unlock()
	select {
	case w.signal <- struct{}{}:
	default:
	}
}

// since returns the logged changes after fromRev, or ok=false when the log
// no longer reaches back that far. Caller holds f.mu.
func (f *Feed) since(fromRev, curRev uint64) ([]store.Change, bool) {
	if fromRev >= curRev {
		return nil, true
	}
	n := len(f.log)
	if n == 0 {
		return nil, false
	}
	oldest := f.log[f.logStart]
	if oldest.Rev > fromRev+1 {
		return nil, false
	}
	var out []store.Change
	for i := 0; i < n; i++ {
		c := f.log[(f.logStart+i)%n]
		if c.Rev > fromRev {
			out = append(out, c)
		}
	}
	return out, true
}

// Watch registers a stream. The caller holds the store's write lock, so no
// commit can slip between the snapshot and the registration; snapshot is
// called only when the log cannot resume from fromRev. curRev is the store's
// current revision.
func (f *Feed) Watch(ctx context.Context, fromRev, curRev uint64, snapshot func() ([]store.Publication, error)) (<-chan store.Change, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return nil, store.ErrClosed
	}
	var first []store.Change
	replay, ok := []store.Change(nil), false
	if fromRev > 0 {
		replay, ok = f.since(fromRev, curRev)
	}
	if ok {
		first = append(replay, store.Change{Kind: store.ChangeSynced, Rev: curRev})
	} else {
		pubs, err := snapshot()
		if err != nil {
			return nil, err
		}
		first = make([]store.Change, 0, len(pubs)+1)
		for _, p := range pubs {
			first = append(first, store.Change{Kind: store.ChangePut, Rev: p.Rev, Pub: p})
		}
		first = append(first, store.Change{Kind: store.ChangeSynced, Rev: curRev})
	}
	w := &watcher{queue: first, signal: make(chan struct{}, 1), done: make(chan struct{})}
	f.watchers[w] = struct{}{}
	out := make(chan store.Change, 64)
	f.wg.Add(1)
	go f.pump(ctx, w, out)
	return out, nil
}

// pump moves a watcher's queue to its channel until ctx ends or the feed
// closes.
func (f *Feed) pump(ctx context.Context, w *watcher, out chan<- store.Change) {
	defer f.wg.Done()
	defer close(out)
	defer func() {
		f.mu.Lock()
		delete(f.watchers, w)
		f.mu.Unlock()
	}()
	for {
		w.mu.Lock()
		batch := w.queue
		w.queue = nil
		w.mu.Unlock()
		for _, c := range batch {
			select {
			case out <- c:
			case <-ctx.Done():
				return
			case <-w.done:
				return
			}
		}
		if len(batch) > 0 {
			continue
		}
		select {
		case <-w.signal:
		case <-ctx.Done():
			return
		case <-w.done:
			return
		}
	}
}

// Close ends every stream and waits for their pumps.
func (f *Feed) Close() {
	f.mu.Lock()
	if !f.closed {
		f.closed = true
		for w := range f.watchers {
			close(w.done)
		}
	}
	f.mu.Unlock()
	f.wg.Wait()
}

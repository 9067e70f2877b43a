package feed

import (
	"context"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/presencehub/presencehub/compositor"
	"github.com/presencehub/presencehub/compositor/dialoginfo"
	"github.com/presencehub/presencehub/compositor/pidf"
)

// views is a fixed compositor for the benchmark.
type views struct{}

func (views) View(resource, event string) compositor.View {
	v := compositor.View{Resource: resource, Event: event}
	if event == compositor.EventPresence {
		v.Presence = &pidf.Document{Entity: resource, Tuples: []pidf.Tuple{{ID: "t", Basic: pidf.Open}}}
	}
	return v
}

// BenchmarkOnChange is the feed's own cost of one dialog change of a
// watched resource: the lamp, the JSON for every package set, the replay
// buffer and the offer to each client's queue (clients drain into
// httptest recorders). B/change is the JSON of one event.
func BenchmarkOnChange(b *testing.B) {
	for _, clients := range []int{0, 1, 100} {
		b.Run("clients="+strconv.Itoa(clients), func(b *testing.B) {
			f, _ := New(Config{Views: views{}, Queue: 1 << 16, Keepalive: time.Hour})
			const aor = "sip:1001@hub.test"
			ctx, cancel := context.WithCancel(context.Background())
			var wg sync.WaitGroup
			for range clients {
				wg.Add(1)
				go func() {
					defer wg.Done()
					_ = f.Serve(ctx, httptest.NewRecorder(), Request{Resources: []Resource{{AOR: aor, Ext: "1001"}}})
				}()
			}
			if clients == 0 { // followed, as if a client had just left
				f.mu.Lock()
				f.followLocked(aor, "1001", all)
				f.mu.Unlock()
			}
			for f.Followed() == 0 || clients > 0 && f.clientsOf(aor) < clients {
				time.Sleep(time.Millisecond)
			}
			views := [2]compositor.View{}
			for i, st := range []string{dialoginfo.Early, dialoginfo.Confirmed} {
				views[i] = compositor.View{Resource: aor, Event: compositor.EventDialog, Dialogs: []dialoginfo.Dialog{{
					ID: "c1", CallID: "c1-call", Direction: dialoginfo.Recipient, State: st,
					RemoteIdentity: "sip:2001@hub.test", RemoteDisplay: "Alice"}}}
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				views[i%2].Rev = uint64(i + 1)
				f.OnChange(compositor.Change{View: views[i%2]})
			}
			b.StopTimer()
			f.mu.Lock()
			b.ReportMetric(float64(len(f.res[aor].docs[all])), "B/change")
			f.mu.Unlock()
			cancel()
			wg.Wait()
		})
	}
}

func (f *Feed) clientsOf(aor string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	if r := f.res[aor]; r != nil {
		return len(r.clients)
	}
	return 0
}

package feed_test

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/presencehub/presencehub/server"
	"github.com/presencehub/presencehub/server/servertest"
)

// BenchmarkFeed_Events publishes b.N dialog changes of one extension
// through the hub's compositor and SQLite store while clients stream it
// over 127.0.0.1; each change is waited for at every client before the
// next (so none is coalesced: one op is one change through store,
// compositor, feed, HTTP and the client's parser). It reports the state
// events the clients received per second (all clients together) and the
// bytes of one event on the wire.
func BenchmarkFeed_Events(b *testing.B) {
	for _, clients := range []int{1, 100} {
		b.Run("clients="+strconv.Itoa(clients), func(b *testing.B) {
			hub := servertest.Start(b, servertest.Options{Configure: func(c *server.Config) {
				c.MaxConnsPerIP = 1000
				c.FeedQueue = 4096
			}})
			d := newDirect(b, hub)
			streams := make([]*benchStream, clients)
			for i := range streams {
				streams[i] = openBench(b, hub)
			}
			b.ResetTimer()
			start := time.Now()
			for i := range b.N {
				remote := "sip:" + strconv.Itoa(i) + "@hub.test"
				d.publish("1001", "dialog", dialogInfo("1001",
					dialog("c1", "recipient", []string{"early", "confirmed"}[i%2], remote, "Caller")))
				for _, s := range streams {
					s.wait(b, remote)
				}
			}
			elapsed := time.Since(start)
			b.StopTimer()
			var events, bytes int64
			for _, s := range streams {
				events += s.events
				bytes += s.bytes
			}
			b.ReportMetric(float64(events)/elapsed.Seconds(), "events/s")
			b.ReportMetric(float64(bytes)/float64(events), "B/event")
		})
	}
}

// benchStream counts the state events and their bytes of one stream.
type benchStream struct {
	s             *stream
	events, bytes int64
}

func openBench(b *testing.B, hub *servertest.Hub) *benchStream {
	b.Helper()
	res := get(b, nil, feedURL(hub, "ext=1001&event=dialog", hub.Token("wallboard", nil)), nil)
	if res.StatusCode != 200 {
		b.Fatalf("GET: %d", res.StatusCode)
	}
	s := &stream{res: res, events: make(chan event, 1<<16), done: make(chan struct{}), start: make(chan struct{})}
	close(s.start)
	go s.read()
	b.Cleanup(s.close)
	bs := &benchStream{s: s}
	if ev := <-s.events; ev.Event != "snapshot" {
		b.Fatalf("first event %+v", ev)
	}
	return bs
}

// wait reads until an event carries marker.
func (bs *benchStream) wait(b *testing.B, marker string) {
	timeout := time.After(60 * time.Second)
	for {
		select {
		case ev, ok := <-bs.s.events:
			if !ok {
				b.Fatal("stream ended")
			}
			if ev.Event != "state" {
				continue
			}
			bs.events++
			bs.bytes += int64(len("id: \nevent: state\ndata: \n\n") + len(ev.ID) + len(ev.Data))
			if strings.Contains(ev.Data, `"`+marker+`"`) {
				return
			}
		case <-timeout:
			b.Fatalf("no event with %s within 60 s", marker)
		}
	}
}

package feed

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/presencehub/presencehub/compositor"
)

// Resource is one resource a client asked for.
type Resource struct {
	AOR, Ext string
	// Rejected: the token may not watch it (a member of a stored list);
	// the snapshot carries it with lamp "rejected" and no event follows.
	Rejected bool
}

// Request is one client's stream.
type Request struct {
	Resources []Resource
	Packages  Packages
	// LastEventID is the Last-Event-ID the client sent ("" none).
	LastEventID string
	// Expires ends the stream with an end event (reason "token expired");
	// zero: never.
	Expires time.Time
	// Done ends the stream with an end event (reason "shutting down") when
	// it is closed: the hub stops.
	Done <-chan struct{}
}

// client is one open stream.
type client struct {
	pk    Packages
	aors  map[string]bool
	queue chan *entry
	wake  chan struct{} // a send after resync was set
	// resync: the queue overflowed; the stream sends a fresh snapshot.
	// Guarded by Feed.mu.
	resync bool
}

// Serve streams req to w as text/event-stream (docs/protocol.md, "State
// feed") until ctx ends (the client left), req.Expires or req.Done: first a
// snapshot (or, for a Last-Event-ID the replay buffer covers, the events
// after it), then one event per change. The caller has authorized every
// resource.
func (f *Feed) Serve(ctx context.Context, w http.ResponseWriter, req Request) error {
	if req.Packages&all == 0 {
		req.Packages = all
	}
	c := &client{pk: req.Packages & all, aors: map[string]bool{}, queue: make(chan *entry, f.cfg.Queue),
		wake: make(chan struct{}, 1)}
	for _, r := range req.Resources {
		if !r.Rejected {
			c.aors[r.AOR] = true
			f.cfg.Views.View(r.AOR, compositor.EventDialog) // loads it into memory, outside the lock
		}
	}
	last, _ := strconv.ParseUint(req.LastEventID, 10, 64)
	buf := fmt.Appendf(nil, "retry: %d\n\n", f.cfg.Retry.Milliseconds())
	f.mu.Lock()
	now := f.cfg.Now()
	f.sweepLocked(now)
	resume := last != 0 && last >= f.floor && last <= f.seq
	for _, r := range req.Resources {
		if r.Rejected {
			continue
		}
		res := f.followLocked(r.AOR, r.Ext, c.pk)
		res.clients[c] = struct{}{}
		if res.since[c.pk] > last {
			resume = false // not followed for these packages all the time since last
		}
	}
	snapReason := "initial"
	if req.LastEventID != "" {
		snapReason = "resume_gap"
	}
	if resume {
		buf, last = f.replayLocked(buf, c, last)
	} else {
		buf, last = f.snapshotLocked(buf, c, req.Resources)
	}
	f.mu.Unlock()
	f.obs.ClientOpened()
	reason := "client_gone"
	defer func() {
		f.leave(c, req.Resources)
		f.obs.ClientClosed(reason)
	}()

	rc := http.NewResponseController(w)
	// A stream lives on: no read deadline (the HTTP server's read timeout
	// would end it; net/http reads on only to see the client leave), and a
	// write deadline per write below.
	if err := rc.SetReadDeadline(time.Time{}); err != nil && !errors.Is(err, http.ErrNotSupported) {
		reason = "write_error"
		return err
	}
	h := w.Header()
	h.Set("Content-Type", "text/event-stream; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no") // nginx: do not buffer the stream
	w.WriteHeader(http.StatusOK)
	write := func(b []byte) error {
		if err := rc.SetWriteDeadline(time.Now().Add(f.cfg.WriteTimeout)); err != nil && !errors.Is(err, http.ErrNotSupported) {
			return err
		}
		if _, err := w.Write(b); err != nil {
			return err
		}
		return rc.Flush()
	}
	if err := write(buf); err != nil {
		reason = "write_error"
		return err
	}
	if !resume {
		f.obs.SnapshotSent(snapReason, len(buf))
	}

	keepalive := time.NewTicker(f.cfg.Keepalive)
	defer keepalive.Stop()
	var expired <-chan time.Time
	if !req.Expires.IsZero() {
		t := time.NewTimer(time.Until(req.Expires))
		defer t.Stop()
		expired = t.C
	}
	end := func(why, r string) error {
		reason = r
		return write(fmt.Appendf(buf[:0], "event: end\ndata: {\"reason\":%q}\n\n", why))
	}
	for {
		buf = buf[:0]
		select {
		case <-ctx.Done():
			return nil
		case <-req.Done:
			return end("shutting down", "shutdown")
		case <-expired:
			return end("token expired", "token_expired")
		case <-keepalive.C:
			buf = append(buf, ": keepalive\n\n"...)
		case <-c.wake:
			f.mu.Lock()
			if !c.resync {
				f.mu.Unlock()
				continue
			}
			for len(c.queue) > 0 {
				<-c.queue
			}
			c.resync = false
			buf, last = f.snapshotLocked(buf, c, req.Resources)
			f.mu.Unlock()
			if err := write(buf); err != nil {
				reason = "write_error"
				return err
			}
			f.obs.SnapshotSent("slow_client", len(buf))
			continue
		case e := <-c.queue:
			n := 0
			for {
				if e.id > last {
					start := len(buf)
					buf = appendEvent(buf, e.id, "state", e.docs[c.pk])
					f.obs.EventSent(len(buf) - start)
					last = e.id
				}
				if n++; n == cap(c.queue) || len(c.queue) == 0 {
					break
				}
				e = <-c.queue
			}
		}
		if len(buf) > 0 {
			if err := write(buf); err != nil {
				reason = "write_error"
				return err
			}
		}
	}
}

// snapshotLocked appends a snapshot event of c's resources at the newest
// id and returns that id.
func (f *Feed) snapshotLocked(buf []byte, c *client, resources []Resource) ([]byte, uint64) {
	buf = fmt.Appendf(buf, "id: %d\nevent: snapshot\ndata: {\"id\":%d,\"resources\":[", f.seq, f.seq)
	for i, r := range resources {
		if i > 0 {
			buf = append(buf, ',')
		}
		if r.Rejected {
			buf = append(buf, rejected(r.AOR, r.Ext)...)
		} else {
			buf = append(buf, f.res[r.AOR].docs[c.pk]...)
		}
	}
	return append(buf, "]}\n\n"...), f.seq
}

// replayLocked appends the buffered events after last that concern c and
// returns the newest id.
func (f *Feed) replayLocked(buf []byte, c *client, last uint64) ([]byte, uint64) {
	for i := 0; i < f.n; i++ {
		e := f.ring[(f.head+i)%len(f.ring)]
		if e.id > last && c.aors[e.aor] && e.docs[c.pk] != nil {
			start := len(buf)
			buf = appendEvent(buf, e.id, "state", e.docs[c.pk])
			f.obs.EventSent(len(buf) - start)
		}
	}
	return buf, f.seq
}

func appendEvent(buf []byte, id uint64, event string, data []byte) []byte {
	buf = append(buf, "id: "...)
	buf = strconv.AppendUint(buf, id, 10)
	buf = append(buf, "\nevent: "...)
	buf = append(buf, event...)
	buf = append(buf, "\ndata: "...)
	buf = append(buf, data...)
	return append(buf, "\n\n"...)
}

// leave removes c from its resources.
func (f *Feed) leave(c *client, resources []Resource) {
	f.mu.Lock()
	defer f.mu.Unlock()
	now := f.cfg.Now()
	for _, r := range resources {
		if res := f.res[r.AOR]; res != nil {
			delete(res.clients, c)
			if len(res.clients) == 0 {
				res.idleAt = now
			}
		}
	}
	f.sweepLocked(now)
}

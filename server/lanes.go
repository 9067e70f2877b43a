package server

import (
	"sync"

	"github.com/presencehub/presencehub/server/auth"
)

// publishJob is one PUBLISH waiting for its lane: the request and who sent
// it (the identity is taken when it is read, as for every request).
type publishJob struct {
	req *publishReq
	id  *auth.Identity
}

// lanes runs the PUBLISHes of one connection: those for one resource (the
// Request-URI's user) one after the other in the order they were read, so
// their answers, entity-tags and the final state follow that order; those
// for different resources at the same time, so that they reach the store
// together and share its commits (group commit). A PBX or an integration
// publishes for many extensions over one connection, many PUBLISHes in
// flight (RFC 3903 §4 lets a client send the next before the answer to the
// previous one, as long as it does not need its entity-tag).
//
// A lane is the queue of one resource's PUBLISHes, kept while any is
// unanswered. Workers run the lanes: at most max goroutines, each taking a
// lane nobody runs, running it until it is empty, then the next such lane.
// A worker with no lane to take waits while other PUBLISHes of the
// connection are unanswered (more are likely to follow) and ends when none
// is: a connection that publishes nothing has no worker, and every worker
// ends before wait returns. So a worker goes on from lane to lane while the
// connection keeps publishing, and its stack, grown by the compositor and
// the store, is not grown again for every PUBLISH.
//
// At most max PUBLISHes are read and not yet answered, queued or running:
// the reader waits for one to finish, so a connection costs at most max
// requests however fast it sends.
type lanes struct {
	run func(publishJob) // answers the PUBLISH
	max int

	mu      sync.Mutex
	room    sync.Cond // signalled when a PUBLISH is answered
	n       int       // read and not yet answered
	lanes   []*lane   // every resource with a PUBLISH unanswered
	ready   []*lane   // lanes with PUBLISHes waiting and no worker, oldest first
	free    []*lane   // empty lanes kept for reuse (at most max: a lane per unanswered PUBLISH)
	workers int
	idle    int       // workers waiting on more and not yet woken
	more    sync.Cond // a lane is ready for an idle worker, or nothing is unanswered
	wg      sync.WaitGroup
}

// lane is the queue of one resource.
type lane struct {
	key     string
	jobs    []publishJob // waiting, in order
	running bool         // a worker runs it
}

func newLanes(limit int, run func(publishJob)) *lanes {
	l := &lanes{run: run, max: max(limit, 1)}
	l.room.L = &l.mu
	l.more.L = &l.mu
	return l
}

// add runs j after every PUBLISH for the same key read before it, starting
// a worker when the key's lane is new and fewer than max run. It waits
// while max PUBLISHes are unanswered. With max 1 it runs j itself, in order
// with everything else. Called by the connection's reader only.
func (l *lanes) add(key string, j publishJob) {
	if l.max == 1 {
		l.run(j)
		return
	}
	l.mu.Lock()
	for l.n >= l.max {
		l.room.Wait()
	}
	l.n++
	for _, ln := range l.lanes {
		if ln.key == key {
			// Running, or ready and waiting for a worker: either way its
			// PUBLISHes run in order.
			ln.jobs = append(ln.jobs, j)
			l.mu.Unlock()
			return
		}
	}
	var ln *lane
	if n := len(l.free); n > 0 {
		ln, l.free[n-1] = l.free[n-1], nil
		l.free = l.free[:n-1]
	} else {
		ln = new(lane)
	}
	ln.key = key
	ln.jobs = append(ln.jobs, j)
	l.lanes = append(l.lanes, ln)
	l.ready = append(l.ready, ln)
	start := false
	switch {
	case l.idle > 0:
		l.idle--
		l.more.Signal()
	case l.workers < l.max:
		start = true
		l.workers++
		l.wg.Add(1)
	}
	l.mu.Unlock()
	if start {
		go l.work()
	}
}

// work runs ready lanes until every PUBLISH read is answered.
func (l *lanes) work() {
	defer l.wg.Done()
	_ = growStack(0)
	l.mu.Lock()
	for {
		if len(l.ready) == 0 {
			if l.n == 0 {
				break
			}
			l.idle++
			l.more.Wait() // woken by add (which took it off idle) or when n reaches 0 (idle reset)
			continue
		}
		ln := l.ready[0]
		l.ready = shift(l.ready)
		ln.running = true
		for len(ln.jobs) > 0 {
			j := ln.jobs[0]
			ln.jobs = shift(ln.jobs)
			l.mu.Unlock()
			l.run(j)
			l.mu.Lock()
			l.n--
			l.room.Signal()
			if l.n == 0 && l.idle > 0 {
				l.idle = 0
				l.more.Broadcast() // nothing unanswered: idle workers end
			}
		}
		l.drop(ln)
	}
	l.workers--
	l.mu.Unlock()
}

// drop forgets an empty lane, keeping it for the next new one. Called with
// mu held.
func (l *lanes) drop(ln *lane) {
	for i, a := range l.lanes {
		if a == ln {
			last := len(l.lanes) - 1
			l.lanes[i], l.lanes[last] = l.lanes[last], nil
			l.lanes = l.lanes[:last]
			break
		}
	}
	ln.key, ln.running = "", false
	l.free = append(l.free, ln)
}

// shift removes a queue's first element in place, so the queue keeps its
// capacity (queues are short: at most max elements).
func shift[T any](q []T) []T {
	copy(q, q[1:])
	var zero T
	q[len(q)-1] = zero
	return q[:len(q)-1]
}

// wait returns when every worker has ended. The reader must have stopped
// adding.
func (l *lanes) wait() { l.wg.Wait() }

// growStack grows a new worker's stack at once to what a PUBLISH needs
// (the compositor, the store and the cgo call into SQLite go about 20 KiB
// deep), while it holds nothing: grown on demand instead, the runtime
// copies the deep frames of a running PUBLISH once per doubling, in every
// new worker (runtime.newstack was 4–8 % of the hub's CPU at peak).
//
//go:noinline
func growStack(i int) byte {
	var pad [24 << 10]byte
	return pad[i] // read at an index unknown when compiled: the frame stays
}

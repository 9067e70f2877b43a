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
// At most max PUBLISHes are read and not yet answered, queued or running:
// the reader waits for one to finish, so a connection costs at most max
// requests however fast it sends. A lane is a goroutine started with its
// resource's first PUBLISH and ended when its queue is empty: a connection
// that publishes nothing has none, and every lane ends before wait returns.
type lanes struct {
	run func(publishJob) // answers the PUBLISH
	max int

	mu     sync.Mutex
	room   sync.Cond // signalled when a PUBLISH is answered
	n      int       // read and not yet answered
	active []*lane
	wg     sync.WaitGroup
}

// lane is the queue of one resource; its goroutine owns the job it runs.
type lane struct {
	key  string
	jobs []publishJob // waiting, in order
}

func newLanes(limit int, run func(publishJob)) *lanes {
	l := &lanes{run: run, max: max(limit, 1)}
	l.room.L = &l.mu
	return l
}

// add runs j after every PUBLISH for the same key read before it, on the
// key's lane, starting one when none runs. It waits while max PUBLISHes are
// unanswered. With max 1 it runs j itself, in order with everything else.
// Called by the connection's reader only.
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
	for _, ln := range l.active {
		if ln.key == key {
			ln.jobs = append(ln.jobs, j)
			l.mu.Unlock()
			return
		}
	}
	ln := &lane{key: key}
	l.active = append(l.active, ln)
	l.wg.Add(1)
	l.mu.Unlock()
	go l.drain(ln, j)
}

// drain runs j and then the lane's queue, and ends the lane when it is
// empty.
func (l *lanes) drain(ln *lane, j publishJob) {
	defer l.wg.Done()
	for {
		l.run(j)
		l.mu.Lock()
		l.n--
		l.room.Signal()
		if len(ln.jobs) == 0 {
			for i, a := range l.active {
				if a == ln {
					last := len(l.active) - 1
					l.active[i], l.active[last] = l.active[last], nil
					l.active = l.active[:last]
					break
				}
			}
			l.mu.Unlock()
			return
		}
		j = ln.jobs[0]
		ln.jobs[0] = publishJob{}
		ln.jobs = ln.jobs[1:]
		l.mu.Unlock()
	}
}

// wait returns when every lane has ended. The reader must have stopped
// adding.
func (l *lanes) wait() { l.wg.Wait() }

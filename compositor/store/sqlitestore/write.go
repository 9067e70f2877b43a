package sqlitestore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"runtime"
	"sync"

	"github.com/presencehub/presencehub/compositor/store"
)

// Group commit.
//
// Create, Replace and Delete queue an op. Exactly one goroutine at a time,
// the leader, commits: it takes everything queued (up to maxBatch) and runs
// it in ONE transaction on the write connection, each op's compare-and-swap
// checked on its own: an op that loses (stale revision, gone, duplicate ID
// or entity-tag) fails alone and takes no revision; the others commit.
// Every op is answered only after COMMIT returned, so an answered success
// is in the WAL exactly as with one transaction per op (kill -9 safe with
// synchronous=NORMAL).
//
// The leader is a caller, not a dedicated goroutine: a caller that finds no
// leader commits its own op on its own goroutine, after letting the
// goroutines that are ready to run go first (runtime.Gosched): those about
// to write (a PBX's PUBLISHes of other extensions, handled concurrently)
// then queue behind it and share its commit instead of each paying one.
// Nothing waits for a timer or a hand-off, so an idle store adds no
// latency (with nothing else ready the yield returns at once). Callers that
// arrive while a commit runs queue and wait; when the leader's own op is
// committed it hands the leadership to the oldest waiting op, whose
// goroutine then commits everything queued meanwhile in one transaction.
// The per-commit cost (BEGIN/COMMIT, WAL locks, WAL frame writes, page
// checksums) is thus shared by all concurrent writers.

// maxBatch bounds one transaction (and the time it holds the write lock).
const maxBatch = 256

type opKind uint8

const (
	opCreate opKind = iota + 1
	opReplace
	opDelete
)

// signal is what a waiting op receives.
type signal uint8

const (
	sigDone signal = iota + 1 // answered: res, rev, err are set
	sigLead                   // not answered yet: become the leader
)

// writeOp is one queued write and, once done delivered sigDone, its answer.
type writeOp struct {
	kind  opKind
	ctx   context.Context
	p     store.Publication // Create, Replace
	id    string            // Delete
	ifRev uint64            // Replace, Delete

	// answer, written by the leader before it sends sigDone
	res store.Publication
	rev uint64
	err error

	done chan signal // cap 1
}

var opPool = sync.Pool{New: func() any { return &writeOp{done: make(chan signal, 1)} }}

// writeQueue holds the ops waiting for a leader.
type writeQueue struct {
	mu      sync.Mutex
	idle    sync.Cond // signalled when leader turns false
	ops     []*writeOp
	spare   []*writeOp // a previous batch slice, reused
	leader  bool       // a goroutine is committing
	stopped bool
	b       batch // the leader's scratch space
}

func (q *writeQueue) init() { q.idle.L = &q.mu }

// stop makes later submissions fail with ErrClosed and waits until every op
// queued before is committed and answered. It reports false when the queue
// was already stopped.
func (q *writeQueue) stop() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.stopped {
		return false
	}
	q.stopped = true
	for q.leader {
		q.idle.Wait()
	}
	return true
}

// take hands the leader up to maxBatch queued ops.
func (q *writeQueue) take() []*writeOp {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.ops) <= maxBatch {
		ops := q.ops
		q.ops, q.spare = q.spare[:0], nil
		return ops
	}
	ops := append(q.spare[:0], q.ops[:maxBatch]...)
	q.spare = nil
	n := copy(q.ops, q.ops[maxBatch:])
	clear(q.ops[n:])
	q.ops = q.ops[:n]
	return ops
}

// handOff ends a leader's turn: the oldest waiting op's goroutine leads
// next, or nobody when the queue is empty. ops is the last batch slice,
// kept for reuse.
func (q *writeQueue) handOff(ops []*writeOp) {
	clear(ops)
	q.mu.Lock()
	if q.spare == nil {
		q.spare = ops[:0]
	}
	if len(q.ops) == 0 {
		q.leader = false
		q.idle.Broadcast()
		q.mu.Unlock()
		return
	}
	next := q.ops[0]
	q.mu.Unlock()
	next.done <- sigLead
}

// submit queues op and returns when it is answered, committing it (and
// whatever else is queued) itself if no other goroutine is.
func (s *Store) submit(op *writeOp) {
	q := &s.wq
	q.mu.Lock()
	if q.stopped {
		q.mu.Unlock()
		op.err = store.ErrClosed
		return
	}
	q.ops = append(q.ops, op)
	if q.leader {
		q.mu.Unlock()
		if <-op.done == sigDone {
			return
		}
		// Handed the lead: op is still queued, at the front.
	} else {
		q.leader = true
		q.mu.Unlock()
		runtime.Gosched() // let the writers that are ready to run join this commit
	}
	// Lead until op is answered; its batch is the first one taken.
	for {
		ops := q.take()
		s.commit(&q.b, ops, op)
		answered := false
		for _, o := range ops {
			answered = answered || o == op
		}
		if answered {
			q.handOff(ops)
			return
		}
		// Cannot happen (op is at the front), but never strand it.
		clear(ops)
	}
}

func newOp(ctx context.Context, kind opKind) *writeOp {
	op := opPool.Get().(*writeOp)
	op.kind, op.ctx = kind, ctx
	return op
}

func putOp(op *writeOp) {
	done := op.done
	*op = writeOp{done: done}
	opPool.Put(op)
}

// Create implements store.Store.
func (s *Store) Create(ctx context.Context, p store.Publication) (store.Publication, error) {
	op := newOp(ctx, opCreate)
	op.p = p
	s.submit(op)
	res, err := op.res, op.err
	putOp(op)
	if err != nil {
		return store.Publication{}, fmt.Errorf("create %q: %w", p.ID, err)
	}
	return res, nil
}

// Replace implements store.Store.
func (s *Store) Replace(ctx context.Context, p store.Publication, ifRev uint64) (store.Publication, error) {
	op := newOp(ctx, opReplace)
	op.p, op.ifRev = p, ifRev
	s.submit(op)
	res, err := op.res, op.err
	putOp(op)
	if err != nil {
		return store.Publication{}, fmt.Errorf("replace %q: %w", p.ID, err)
	}
	return res, nil
}

// Delete implements store.Store.
func (s *Store) Delete(ctx context.Context, id string, ifRev uint64) (uint64, error) {
	op := newOp(ctx, opDelete)
	op.id, op.ifRev = id, ifRev
	s.submit(op)
	rev, err := op.rev, op.err
	putOp(op)
	if err != nil {
		return 0, fmt.Errorf("delete %q: %w", id, err)
	}
	return rev, nil
}

// batch is the leader's scratch space, reused across commits.
type batch struct {
	changes []store.Change
	ok      []*writeOp // ops that took a revision, in revision order
}

// commit runs ops in one transaction and answers each of them except self
// (the leader's own op, which it reads itself).
func (s *Store) commit(b *batch, ops []*writeOp, self *writeOp) {
	s.mu.Lock()
	err := s.commitLocked(b, ops)
	if err == nil && len(b.changes) > 0 {
		// Published before anyone is answered, as with one commit per op.
		s.feed.Publish(b.changes...)
	}
	s.mu.Unlock()
	for _, op := range ops {
		if err != nil && op.err == nil {
			op.err = err
		}
		if op != self {
			op.done <- sigDone
		}
	}
	clear(b.changes)
	b.changes, b.ok = b.changes[:0], b.ok[:0]
}

// commitLocked executes ops between one BEGIN and one COMMIT. An op's own
// failure (compare-and-swap, constraint) is set on the op; the returned
// error means nothing was committed and every op that had succeeded must
// fail with it.
func (s *Store) commitLocked(b *batch, ops []*writeOp) error {
	// The writer's statements run with a context that has no Done channel:
	// go-sqlite3 then executes inline instead of in a goroutine per
	// statement. Each caller's ctx is checked before its op runs.
	ctx := context.Background()
	if s.closed.Load() {
		return store.ErrClosed
	}
	// One write of a publication (a PUBLISH at low rates) is one statement
	// in its own transaction: the triggers of migration 5 write its
	// revision to store_rev, and SQLite commits it before the statement
	// returns (or undoes all of it), so it is as durable as BEGIN … COMMIT.
	single := len(ops) == 1 && ops[0].kind != opDelete
	if !single {
		if _, err := s.stBegin.ExecContext(ctx); err != nil {
			return mapErr(err)
		}
	}
	now := s.now().UnixNano()
	rev := s.rev
	for _, op := range ops {
		if err := op.ctx.Err(); err != nil {
			op.err = err
			continue
		}
		var err error
		switch op.kind {
		case opCreate:
			err = s.execCreate(ctx, op, rev+1)
		case opReplace:
			err = s.execReplace(ctx, op, rev+1, now, single)
		case opDelete:
			err = s.execDelete(ctx, op, rev+1, now)
		}
		if err != nil {
			if errors.Is(err, store.ErrConflict) || errors.Is(err, store.ErrNotFound) {
				// Only that statement was undone; the transaction goes on.
				op.err = err
				continue
			}
			if !single {
				s.rollbackLocked()
			}
			return err
		}
		rev++
		b.ok = append(b.ok, op)
	}
	if single {
		// Committed, or nothing happened (the op failed alone).
		if len(b.ok) == 0 {
			return nil
		}
	} else {
		if len(b.ok) == 0 {
			s.rollbackLocked()
			return nil
		}
		// The commit's revision, read at start-up (and by ListAt):
		// written once here, since a Replace in a group does not write
		// it (migration 7) and a delete leaves no row that has it.
		if _, err := s.stSetRev.ExecContext(ctx, int64(rev)); err != nil {
			s.rollbackLocked()
			return mapErr(err)
		}
		if _, err := s.stCommit.ExecContext(ctx); err != nil {
			s.rollbackLocked()
			return mapErr(err)
		}
	}
	s.rev = rev
	s.cp.committed(len(b.ok))
	s.stats.add(len(ops))
	for _, op := range b.ok {
		switch op.kind {
		case opCreate, opReplace:
			s.armLocked(op.res.Expires)
			b.changes = append(b.changes, store.Change{Kind: store.ChangePut, Rev: op.res.Rev, Pub: op.res})
		case opDelete:
			b.changes = append(b.changes, store.Change{Kind: store.ChangeDelete, Rev: op.rev, Pub: op.res})
		}
	}
	return nil
}

func (s *Store) execCreate(ctx context.Context, op *writeOp, rev uint64) error {
	p := op.p
	res, err := s.stInsert.ExecContext(ctx, p.ID, p.Resource, p.Event, p.ETag, int64(rev),
		p.Expires.UnixNano(), p.Created.UnixNano(), p.Updated.UnixNano(),
		p.ContentType, nonNil(p.Body), p.Publisher, nonNil(p.Meta))
	if err != nil {
		return mapErr(err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return fmt.Errorf("%w: entity-tag %q in use for %s", store.ErrConflict, p.ETag, p.Resource)
	}
	p.Rev = rev
	op.res = p
	return nil
}

// execReplace runs op's compare-and-swap; alone says that it is its
// transaction's only statement (see Store.stReplace).
func (s *Store) execReplace(ctx context.Context, op *writeOp, rev uint64, now int64, alone bool) error {
	p := op.p
	sts := &s.stReplace[0]
	if alone {
		sts = &s.stReplace[1]
	}
	// Same publisher first (see Store.stReplace); nothing matched: the
	// publisher changes, or the compare-and-swap fails.
	for _, st := range sts {
		res, err := st.ExecContext(ctx, p.ETag, int64(rev), p.Expires.UnixNano(), p.Created.UnixNano(), p.Updated.UnixNano(),
			p.ContentType, nonNil(p.Body), p.Publisher, nonNil(p.Meta),
			p.ID, int64(op.ifRev), now)
		if err != nil {
			return mapErr(err)
		}
		if n, _ := res.RowsAffected(); n == 1 {
			p.Rev = rev
			op.res = p
			return nil
		}
	}
	return s.missLocked(ctx, p.ID)
}

func (s *Store) execDelete(ctx context.Context, op *writeOp, rev uint64, now int64) error {
	old, err := scanPub(s.stDeleteIf.QueryRowContext(ctx, op.id, int64(op.ifRev), now))
	if errors.Is(err, sql.ErrNoRows) {
		return s.missLocked(ctx, op.id)
	}
	if err != nil {
		return mapErr(err)
	}
	old.Rev = rev
	op.res, op.rev = old, rev
	return nil
}

func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

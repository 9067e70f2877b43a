package sqlitestore

import (
	"context"
	"database/sql"
)

// Checkpoints.
//
// SQLite's automatic checkpoint runs inside the COMMIT that pushes the WAL
// past 1000 pages: that commit copies the WAL into the database file and
// fsyncs both, while every PUBLISH queued behind it waits. The store turns
// it off on the write connection and checkpoints from its own connection
// and goroutine instead, in two steps:
//
//  1. PASSIVE, concurrently with commits: copies the bulk of the WAL.
//  2. PASSIVE again, holding the write lock (Store.mu): copies only what was
//     committed during step 1. With no commit in between, the WAL is then
//     completely backfilled, so the next commit starts it over from the
//     beginning. Without this step a busy writer always stays ahead of the
//     checkpoint and the WAL grows without bound.
//
// Durability is unchanged: a commit is complete once it is in the WAL.

// ckptEvery is how much WAL (estimated in pages) triggers a checkpoint,
// as SQLite's default wal_autocheckpoint of 1000 pages.
const ckptEvery = 1000

// pagesPerCommit estimates the pages a commit writes besides one per op
// (index leaves, the counts and revision rows, the header frame).
const pagesPerCommit = 8

type checkpointer struct {
	s       *Store
	conn    *sql.Conn
	pending int // estimated WAL pages since the last kick; guarded by Store.mu
	kick    chan struct{}
	quit    chan struct{}
	done    chan struct{}
}

func (c *checkpointer) start(s *Store, conn *sql.Conn) {
	c.s, c.conn = s, conn
	c.kick = make(chan struct{}, 1)
	c.quit = make(chan struct{})
	c.done = make(chan struct{})
	go c.run()
}

// committed counts a commit of n changes. The caller holds Store.mu.
func (c *checkpointer) committed(n int) {
	c.pending += n + pagesPerCommit
	if c.pending < ckptEvery {
		return
	}
	c.pending = 0
	select {
	case c.kick <- struct{}{}:
	default: // one is pending already
	}
}

func (c *checkpointer) run() {
	defer close(c.done)
	ctx := context.Background()
	for {
		select {
		case <-c.kick:
		case <-c.quit:
			return
		}
		// A failure (busy, I/O) leaves the pages in the WAL for the next
		// try; SQLite checkpoints on close too.
		if c.checkpoint(ctx) != nil {
			continue
		}
		c.s.mu.Lock()
		_ = c.checkpoint(ctx)
		c.s.mu.Unlock()
	}
}

func (c *checkpointer) checkpoint(ctx context.Context) error {
	var busy, logPages, copied int
	return c.conn.QueryRowContext(ctx, `PRAGMA wal_checkpoint(PASSIVE)`).Scan(&busy, &logPages, &copied)
}

// stop ends the goroutine; the connection is closed by Store.Close.
func (c *checkpointer) stop() {
	if c.quit == nil {
		return
	}
	close(c.quit)
	<-c.done
}

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

// ckptEvery is how much WAL (estimated in pages, ~8 MB) triggers a
// checkpoint. Each checkpoint fsyncs the WAL and the database file and
// copies every page changed since the last one once, however often it
// was rewritten: twice SQLite's default of 1000 pages means half the
// fsyncs and fewer copies of the hot pages. The estimate counts one page
// per write, fewer than a Create writes, so the WAL can reach about twice
// this (TestCheckpoint_WALStaysBounded holds it under 32 MB). With
// synchronous=NORMAL what a power loss can take is bounded by it too
// (kill -9 takes nothing: see the package doc).
const ckptEvery = 2000

// pagesPerCommit estimates the pages a commit writes besides one per op
// (index leaves, the counts and revision rows, the header frame).
const pagesPerCommit = 8

type checkpointer struct {
	s       *Store
	conn    *sql.Conn
	pending int // estimated WAL pages since the last kick; guarded by Store.mu
	// frames counts the WAL frames (pages) written, read at each
	// checkpoint that backfilled the whole WAL; dirty tells whether a
	// commit came since. Guarded by Store.mu. For benchmarks (pages per
	// commit): exact while no reader keeps the WAL from starting over.
	frames int64
	dirty  bool
	kick   chan struct{}
	quit   chan struct{}
	done   chan struct{}
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
	c.dirty = true
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
		if _, err := c.checkpoint(ctx); err != nil {
			continue
		}
		c.s.mu.Lock()
		_ = c.fullLocked(ctx)
		c.s.mu.Unlock()
	}
}

// fullLocked is step 2: with no commit running (the caller holds
// Store.mu) the checkpoint backfills the whole WAL, whose frames are then
// all counted.
func (c *checkpointer) fullLocked(ctx context.Context) error {
	logPages, err := c.checkpoint(ctx)
	if err == nil && c.dirty {
		c.frames += int64(logPages)
		c.dirty = false
	}
	return err
}

func (c *checkpointer) checkpoint(ctx context.Context) (logPages int, err error) {
	var busy, copied int
	err = c.conn.QueryRowContext(ctx, `PRAGMA wal_checkpoint(PASSIVE)`).Scan(&busy, &logPages, &copied)
	return logPages, err
}

// stop ends the goroutine; the connection is closed by Store.Close.
func (c *checkpointer) stop() {
	if c.quit == nil {
		return
	}
	close(c.quit)
	<-c.done
}

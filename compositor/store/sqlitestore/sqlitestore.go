package sqlitestore

import (
	"context"
	"database/sql"
	_ "embed"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	sqlite3 "github.com/mattn/go-sqlite3"

	"github.com/presencehub/presencehub/compositor/store"
	"github.com/presencehub/presencehub/compositor/store/internal/changefeed"
)

//go:embed schema.sql
var schemaV1 string

//go:embed migrate_002_resource_index.sql
var schemaV2 string

//go:embed migrate_003_counts.sql
var schemaV3 string

//go:embed migrate_004_lists.sql
var schemaV4 string

//go:embed migrate_005_rev_trigger.sql
var schemaV5 string

//go:embed migrate_006_rowid_table.sql
var schemaV6 string

//go:embed migrate_007_rev_alone.sql
var schemaV7 string

// migrations are applied in order; index i is version i+1. Append, never edit.
var migrations = []string{schemaV1, schemaV2, schemaV3, schemaV4, schemaV5, schemaV6, schemaV7}

// Options configure Open.
type Options struct {
	// Synchronous is the SQLite synchronous pragma: "NORMAL" (default,
	// survives kill -9, see package doc) or "FULL" (survives power loss).
	Synchronous string
	// BusyTimeout is how long a commit waits on a lock before ErrBusy.
	// Default 5s.
	BusyTimeout time.Duration
	// Now is the clock for expiry; default time.Now.
	Now func() time.Time
	// Logger receives what the background integrity check finds (a damaged
	// file); default: discarded.
	Logger *slog.Logger
}

// Store is a store.Store on one SQLite file.
type Store struct {
	now  func() time.Time
	db   *sql.DB   // write-side pool: the writer's and the checkpointer's connection
	w    *sql.Conn // the one write connection: every commit, the snapshot
	ckpt *sql.Conn // checkpoints the WAL off the commit path
	r    *sql.DB   // read pool
	feed *changefeed.Feed

	// Statements on w (used under mu) and on the read pool.
	stBegin, stCommit, stRollback            *sql.Stmt
	stInsert, stDelete, stDeleteIf, stSetRev *sql.Stmt
	stReplace                                [2][2]*sql.Stmt // [alone][publisher changes]
	stAlive, stExpired, stMinExpires         *sql.Stmt
	stGet, stFind, stListAt                  *sql.Stmt

	closed atomic.Bool // set by Close; reads check it without taking mu
	lock   *fileLock   // one process per database file (lock.go)
	check  integrity   // the background quick_check (integrity.go)

	mu      sync.Mutex // serialises use of w; guards rev, timer
	rev     uint64
	timer   *time.Timer
	timerAt time.Time

	wq    writeQueue // group commit: see write.go; its leader takes mu
	stats commitCounter
	cp    checkpointer
}

var (
	_ store.Store   = (*Store)(nil)
	_ store.Indexed = (*Store)(nil)
)

const columns = `id, resource, event, etag, rev, expires, created, updated, content_type, body, publisher, meta`

// Open opens (creating if needed) the database at path, applies
// migrations, removes publications that expired while down, arms the
// expiry timer and starts the writer and checkpointer goroutines (ended by
// Close).
func Open(ctx context.Context, path string, opts Options) (*Store, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.BusyTimeout <= 0 {
		opts.BusyTimeout = 5 * time.Second
	}
	syncMode := strings.ToUpper(opts.Synchronous)
	switch syncMode {
	case "":
		syncMode = "NORMAL"
	case "NORMAL", "FULL", "EXTRA":
	default:
		return nil, fmt.Errorf("sqlitestore: synchronous %q: want NORMAL or FULL", opts.Synchronous)
	}
	q := url.Values{}
	q.Set("_journal_mode", "WAL")
	q.Set("_synchronous", syncMode)
	q.Set("_busy_timeout", fmt.Sprint(opts.BusyTimeout.Milliseconds()))
	q.Set("_txlock", "immediate")
	// database/sql never uses one connection from two goroutines at once:
	// SQLite's own per-connection mutex (serialized mode) is pure cost.
	q.Set("_mutex", "no")
	dsn := "file:" + path + "?" + q.Encode()
	// Readers begin deferred: a read transaction (ListAt) must not take
	// the write lock.
	q.Set("_txlock", "deferred")
	q.Set("_query_only", "1")
	readDSN := "file:" + path + "?" + q.Encode()

	s := &Store{now: opts.Now, feed: changefeed.New()}
	// A file made by this Open holds nothing to check (integrity.go).
	fi, statErr := os.Stat(path)
	existed := statErr == nil && fi.Size() > 0
	var err error
	if path != ":memory:" {
		if s.lock, err = lock(path); err != nil {
			return nil, err
		}
	}
	if s.db, err = sql.Open("sqlite3", dsn); err != nil {
		s.lock.release()
		return nil, fmt.Errorf("sqlitestore: open %s: %w", path, err)
	}
	// Two connections, each held for the store's life: the writer and the
	// checkpointer. No pool churn.
	s.db.SetMaxOpenConns(2)
	s.db.SetMaxIdleConns(2)
	s.db.SetConnMaxLifetime(0)
	s.db.SetConnMaxIdleTime(0)
	if err := s.init(ctx, path, readDSN); err != nil {
		s.closeDBs()
		return nil, err
	}
	s.wq.init()
	s.cp.start(s, s.ckpt)
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if existed {
		s.check.start(s, path, opts.Logger)
	}
	return s, nil
}

func (s *Store) init(ctx context.Context, path, readDSN string) error {
	var err error
	if s.w, err = s.db.Conn(ctx); err != nil {
		return fmt.Errorf("sqlitestore: open %s: %w", path, mapErr(err))
	}
	if err := s.migrate(ctx); err != nil {
		return fmt.Errorf("sqlitestore: migrate %s: %w", path, err)
	}
	// The checkpointer copies the WAL into the database in the background
	// (checkpoint.go); a commit never runs a checkpoint itself.
	if _, err := s.w.ExecContext(ctx, `PRAGMA wal_autocheckpoint = 0`); err != nil {
		return fmt.Errorf("sqlitestore: %s: %w", path, mapErr(err))
	}
	if s.ckpt, err = s.db.Conn(ctx); err != nil {
		return fmt.Errorf("sqlitestore: open %s: %w", path, mapErr(err))
	}
	if s.r, err = sql.Open("sqlite3", readDSN); err != nil {
		return fmt.Errorf("sqlitestore: open reader %s: %w", path, err)
	}
	s.r.SetMaxOpenConns(4)
	s.r.SetMaxIdleConns(4)
	if err := s.prepare(ctx); err != nil {
		return fmt.Errorf("sqlitestore: prepare: %w", err)
	}
	// Revisions continue after the newest commit: every commit writes its
	// revision to store_rev (migration 3), so no scan of the table.
	var rev int64
	if err := s.w.QueryRowContext(ctx, `SELECT rev FROM store_rev WHERE id = 1`).Scan(&rev); err != nil {
		return fmt.Errorf("sqlitestore: read revision: %w", err)
	}
	s.rev = uint64(rev)
	// What expired while we were down goes without a change, in one
	// statement on the expiry index: nobody watches yet, and no later
	// read or Changes snapshot contains it.
	if _, err := s.w.ExecContext(ctx, `DELETE FROM publications WHERE expires <= ?`, s.now().UnixNano()); err != nil {
		return fmt.Errorf("sqlitestore: remove expired: %w", mapErr(err))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rearmLocked(ctx)
}

func (s *Store) migrate(ctx context.Context) error {
	if _, err := s.w.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)`); err != nil {
		return mapErr(err)
	}
	applied := false
	for i, m := range migrations {
		version := i + 1
		tx, err := s.w.BeginTx(ctx, nil)
		if err != nil {
			return mapErr(err)
		}
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM schema_migrations WHERE version = ?`, version).Scan(&n); err != nil {
			tx.Rollback()
			return mapErr(err)
		}
		if n > 0 {
			tx.Rollback()
			continue
		}
		if _, err := tx.ExecContext(ctx, m); err != nil {
			tx.Rollback()
			return fmt.Errorf("version %d: %w", version, mapErr(err))
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)`, version, time.Now().Unix()); err != nil {
			tx.Rollback()
			return mapErr(err)
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("version %d: %w", version, mapErr(err))
		}
		applied = true
	}
	if applied {
		// A migration that rebuilt a table (6) left a WAL as large as
		// the table: copy it into the database and empty it now, not at
		// the first checkpoint.
		if _, err := s.w.ExecContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
			return mapErr(err)
		}
	}
	return nil
}

// preparer is a *sql.Conn or a *sql.DB.
type preparer interface {
	PrepareContext(ctx context.Context, query string) (*sql.Stmt, error)
}

func (s *Store) prepare(ctx context.Context) error {
	for _, p := range []struct {
		st  **sql.Stmt
		db  preparer
		sql string
	}{
		// Transactions are driven by statements on the dedicated
		// connection (not database/sql's Tx): one BEGIN per group commit.
		{&s.stBegin, s.w, `BEGIN IMMEDIATE`},
		{&s.stCommit, s.w, `COMMIT`},
		{&s.stRollback, s.w, `ROLLBACK`},
		// An entity-tag is unique within its resource (no index of its
		// own: migration 6); a write that would repeat one inserts or
		// updates nothing, which the caller reports as a conflict.
		{&s.stInsert, s.w, `INSERT INTO publications (` + columns + `) SELECT ?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12
			WHERE NOT EXISTS (SELECT 1 FROM publications INDEXED BY publications_by_resource WHERE resource = ?2 AND etag = ?4)`},
		// A Replace by the same publisher (nearly all) leaves the
		// publisher column out of its SET: the per-publisher count
		// trigger (AFTER UPDATE OF publisher) is then not part of the
		// statement at all, nor is loading the old row's values for it;
		// stReplace[…][1] is the write that changes the publisher.
		// stReplace[1][…] is a Replace that is its transaction's only
		// statement: it sets alone, whose trigger writes the store
		// revision (migration 7); in a group commit (stReplace[0][…]) the
		// leader writes it once at the end.
		{&s.stReplace[0][0], s.w, replaceSQL("", false)},
		{&s.stReplace[0][1], s.w, replaceSQL("", true)},
		{&s.stReplace[1][0], s.w, replaceSQL("alone = 1, ", false)},
		{&s.stReplace[1][1], s.w, replaceSQL("alone = 1, ", true)},
		{&s.stDelete, s.w, `DELETE FROM publications WHERE id = ? AND rev = ?`},
		{&s.stDeleteIf, s.w, `DELETE FROM publications WHERE id = ? AND rev = ? AND expires > ? RETURNING ` + columns},
		{&s.stSetRev, s.w, `UPDATE store_rev SET rev = ? WHERE id = 1`},
		{&s.stAlive, s.w, `SELECT COUNT(*) FROM publications WHERE id = ? AND expires > ?`},
		{&s.stExpired, s.w, `SELECT ` + columns + ` FROM publications WHERE expires <= ? ORDER BY rev`},
		{&s.stMinExpires, s.w, `SELECT MIN(expires) FROM publications`},
		{&s.stGet, s.r, `SELECT ` + columns + ` FROM publications WHERE id = ? AND expires > ?`},
		{&s.stFind, s.r, `SELECT ` + columns + ` FROM publications INDEXED BY publications_by_resource WHERE etag = ? AND resource = ? AND expires > ?`},
		{&s.stListAt, s.r, listAtSQL},
	} {
		st, err := p.db.PrepareContext(ctx, p.sql)
		if err != nil {
			return mapErr(err)
		}
		*p.st = st
	}
	return nil
}

// replaceSQL is a Replace's compare-and-swap UPDATE; set is what it sets
// besides the publication, and withPublisher whether it sets the
// publisher too (or requires it unchanged).
func replaceSQL(set string, withPublisher bool) string {
	if withPublisher {
		return `UPDATE publications SET ` + set + `etag = ?1, rev = ?2, expires = ?3, created = ?4, updated = ?5, content_type = ?6, body = ?7, publisher = ?8, meta = ?9
			WHERE id = ?10 AND rev = ?11 AND expires > ?12 AND ` + etagFree
	}
	return `UPDATE publications SET ` + set + `etag = ?1, rev = ?2, expires = ?3, created = ?4, updated = ?5, content_type = ?6, body = ?7, meta = ?9
			WHERE id = ?10 AND rev = ?11 AND expires > ?12 AND publisher = ?8 AND ` + etagFree
}

// etagFree is the condition of a Replace that no other publication of
// the resource holds the new entity-tag (?1).
const etagFree = `NOT EXISTS (SELECT 1 FROM publications q INDEXED BY publications_by_resource
	WHERE q.resource = publications.resource AND q.etag = ?1 AND q.seq <> publications.seq)`

// mapErr turns SQLite conditions the caller can act on into store errors.
func mapErr(err error) error {
	var se sqlite3.Error
	if errors.As(err, &se) {
		switch se.Code {
		case sqlite3.ErrBusy, sqlite3.ErrLocked, sqlite3.ErrReadonly, sqlite3.ErrFull:
			return fmt.Errorf("%w: %w", store.ErrBusy, err)
		case sqlite3.ErrConstraint:
			return fmt.Errorf("%w: %w", store.ErrConflict, err)
		case sqlite3.ErrCorrupt, sqlite3.ErrNotADB:
			return fmt.Errorf("%w: %w", ErrDamaged, err)
		}
	}
	return err
}

type scanner interface{ Scan(dest ...any) error }

func scanPub(sc scanner) (store.Publication, error) {
	var p store.Publication
	var rev, expires, created, updated int64
	err := sc.Scan(&p.ID, &p.Resource, &p.Event, &p.ETag, &rev, &expires, &created, &updated,
		&p.ContentType, &p.Body, &p.Publisher, &p.Meta)
	p.Rev = uint64(rev)
	p.Expires = time.Unix(0, expires)
	p.Created = time.Unix(0, created)
	p.Updated = time.Unix(0, updated)
	return p, err
}

// isClosed is checked by reads without taking mu, so lookups never wait
// for a commit.
func (s *Store) isClosed() bool { return s.closed.Load() }

// Get implements store.Store.
func (s *Store) Get(ctx context.Context, id string) (store.Publication, error) {
	if s.isClosed() {
		return store.Publication{}, store.ErrClosed
	}
	p, err := scanPub(s.stGet.QueryRowContext(ctx, id, s.now().UnixNano()))
	if errors.Is(err, sql.ErrNoRows) {
		return p, fmt.Errorf("get %q: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return p, fmt.Errorf("get %q: %w", id, mapErr(err))
	}
	return p, nil
}

// FindByETag implements store.Store.
func (s *Store) FindByETag(ctx context.Context, resource, etag string) (store.Publication, error) {
	if s.isClosed() {
		return store.Publication{}, store.ErrClosed
	}
	p, err := scanPub(s.stFind.QueryRowContext(ctx, etag, resource, s.now().UnixNano()))
	if errors.Is(err, sql.ErrNoRows) {
		return p, fmt.Errorf("find %s etag %q: %w", resource, etag, store.ErrNotFound)
	}
	if err != nil {
		return p, fmt.Errorf("find %s etag %q: %w", resource, etag, mapErr(err))
	}
	return p, nil
}

// List implements store.Store.
func (s *Store) List(ctx context.Context, resource string) ([]store.Publication, error) {
	if s.isClosed() {
		return nil, store.ErrClosed
	}
	return s.list(ctx, s.r, resource)
}

// querier is a *sql.Conn or a *sql.DB.
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

func (s *Store) list(ctx context.Context, db querier, resource string) ([]store.Publication, error) {
	var rows *sql.Rows
	var err error
	now := s.now().UnixNano()
	if resource == "" {
		rows, err = db.QueryContext(ctx, `SELECT `+columns+` FROM publications WHERE expires > ? ORDER BY rev`, now)
	} else {
		rows, err = db.QueryContext(ctx, `SELECT `+columns+` FROM publications WHERE resource = ? AND expires > ? ORDER BY rev`, resource, now)
	}
	if err != nil {
		return nil, fmt.Errorf("list %q: %w", resource, mapErr(err))
	}
	defer rows.Close()
	var out []store.Publication
	for rows.Next() {
		p, err := scanPub(rows)
		if err != nil {
			return nil, fmt.Errorf("list %q: %w", resource, mapErr(err))
		}
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list %q: %w", resource, mapErr(err))
	}
	return out, nil
}

// missLocked tells why a compare-and-swap touched no row.
func (s *Store) missLocked(ctx context.Context, id string) error {
	var n int
	if err := s.stAlive.QueryRowContext(ctx, id, s.now().UnixNano()).Scan(&n); err != nil {
		return mapErr(err)
	}
	if n == 0 {
		return store.ErrNotFound
	}
	return store.ErrConflict
}

// txLocked runs fn in one write transaction on w and commits; on any
// error nothing changes. The caller holds mu.
func (s *Store) txLocked(ctx context.Context, fn func() error) error {
	if _, err := s.stBegin.ExecContext(ctx); err != nil {
		return mapErr(err)
	}
	if err := fn(); err != nil {
		s.rollbackLocked()
		return err
	}
	if _, err := s.stCommit.ExecContext(ctx); err != nil {
		s.rollbackLocked()
		return mapErr(err)
	}
	return nil
}

// rollbackLocked ends a failed transaction. SQLite may already have rolled
// it back (disk full, I/O error): the error of a second ROLLBACK is moot.
func (s *Store) rollbackLocked() {
	_, _ = s.stRollback.ExecContext(context.Background())
}

// removeLocked deletes pubs in one transaction, one revision each, and
// returns the changes to publish. Nothing changes on error.
func (s *Store) removeLocked(ctx context.Context, pubs []store.Publication, kind store.ChangeKind) ([]store.Change, error) {
	if len(pubs) == 0 {
		return nil, nil
	}
	rev := s.rev
	changes := make([]store.Change, 0, len(pubs))
	err := s.txLocked(ctx, func() error {
		for _, p := range pubs {
			if _, err := s.stDelete.ExecContext(ctx, p.ID, int64(p.Rev)); err != nil {
				return mapErr(err)
			}
			rev++
			p.Rev = rev
			changes = append(changes, store.Change{Kind: kind, Rev: rev, Pub: p})
		}
		if _, err := s.stSetRev.ExecContext(ctx, int64(rev)); err != nil {
			return mapErr(err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	s.rev = rev
	s.cp.committed(len(pubs))
	return changes, nil
}

// DeleteAll implements store.Store.
func (s *Store) DeleteAll(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed.Load() {
		return store.ErrClosed
	}
	all, err := s.list(ctx, s.w, "")
	if err != nil {
		return fmt.Errorf("delete all: %w", err)
	}
	// Include rows that expired but were not swept yet.
	expired, err := s.expiredLocked(ctx)
	if err != nil {
		return fmt.Errorf("delete all: %w", err)
	}
	changes, err := s.removeLocked(ctx, append(expired, all...), store.ChangeDelete)
	if err != nil {
		return fmt.Errorf("delete all: %w", err)
	}
	s.feed.Publish(changes...)
	return nil
}

func (s *Store) expiredLocked(ctx context.Context) ([]store.Publication, error) {
	rows, err := s.stExpired.QueryContext(ctx, s.now().UnixNano())
	if err != nil {
		return nil, mapErr(err)
	}
	defer rows.Close()
	var out []store.Publication
	for rows.Next() {
		p, err := scanPub(rows)
		if err != nil {
			return nil, mapErr(err)
		}
		out = append(out, p)
	}
	return out, mapErr(rows.Err())
}

// Expire implements store.Store.
func (s *Store) Expire(ctx context.Context) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed.Load() {
		return 0, store.ErrClosed
	}
	return s.expireLocked(ctx)
}

func (s *Store) expireLocked(ctx context.Context) (int, error) {
	gone, err := s.expiredLocked(ctx)
	if err != nil {
		return 0, fmt.Errorf("expire: %w", err)
	}
	changes, err := s.removeLocked(ctx, gone, store.ChangeExpire)
	if err != nil {
		return 0, fmt.Errorf("expire: %w", err)
	}
	s.feed.Publish(changes...)
	return len(gone), s.rearmLocked(ctx)
}

// rearmLocked arms the timer for the earliest stored expiry.
func (s *Store) rearmLocked(ctx context.Context) error {
	s.timerAt = time.Time{}
	if s.timer != nil {
		s.timer.Stop()
	}
	var next sql.NullInt64
	if err := s.stMinExpires.QueryRowContext(ctx).Scan(&next); err != nil {
		return fmt.Errorf("next expiry: %w", mapErr(err))
	}
	if next.Valid {
		s.armLocked(time.Unix(0, next.Int64))
	}
	return nil
}

// armLocked makes sure the single expiry timer fires no later than at.
func (s *Store) armLocked(at time.Time) {
	if !s.timerAt.IsZero() && !at.Before(s.timerAt) {
		return
	}
	s.timerAt = at
	d := max(at.Sub(s.now()), 0)
	if s.timer == nil {
		s.timer = time.AfterFunc(d, s.sweep)
		return
	}
	s.timer.Reset(d)
}

func (s *Store) sweep() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed.Load() {
		return
	}
	s.timerAt = time.Time{}
	if _, err := s.expireLocked(context.Background()); err != nil {
		// Try again shortly: the rows stay expired (invisible to reads).
		s.armLocked(s.now().Add(time.Second))
	}
}

// Changes implements store.Store.
func (s *Store) Changes(ctx context.Context, fromRev uint64) (<-chan store.Change, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed.Load() {
		return nil, store.ErrClosed
	}
	return s.feed.Watch(ctx, fromRev, s.rev, func() ([]store.Publication, error) {
		return s.list(ctx, s.w, "")
	})
}

// Ping implements store.Store.
func (s *Store) Ping(ctx context.Context) error {
	if s.isClosed() {
		return store.ErrClosed
	}
	if err := s.check.fault(); err != nil {
		return err
	}
	var one int
	if err := s.r.QueryRowContext(ctx, `SELECT 1 FROM store_rev WHERE id = 1`).Scan(&one); err != nil {
		return fmt.Errorf("ping: %w", mapErr(err))
	}
	return nil
}

// Close implements store.Store. Writes queued before Close are committed
// (and answered) first; later ones get ErrClosed.
func (s *Store) Close() error {
	if !s.wq.stop() {
		return nil // already closed
	}
	s.cp.stop()
	s.check.stop()
	s.mu.Lock()
	s.closed.Store(true)
	if s.timer != nil {
		s.timer.Stop()
	}
	s.mu.Unlock()
	s.feed.Close()
	return s.closeDBs()
}

func (s *Store) closeDBs() error {
	var errs []error
	for _, st := range []*sql.Stmt{s.stBegin, s.stCommit, s.stRollback, s.stInsert, s.stDelete,
		s.stDeleteIf, s.stSetRev, s.stAlive, s.stExpired, s.stMinExpires, s.stGet, s.stFind, s.stListAt,
		s.stReplace[0][0], s.stReplace[0][1], s.stReplace[1][0], s.stReplace[1][1]} {
		if st != nil {
			errs = append(errs, st.Close())
		}
	}
	if s.r != nil {
		errs = append(errs, s.r.Close())
	}
	for _, c := range []*sql.Conn{s.ckpt, s.w} {
		if c != nil {
			errs = append(errs, c.Close())
		}
	}
	if s.db != nil {
		errs = append(errs, s.db.Close())
	}
	errs = append(errs, s.lock.release()) // last: the file is closed
	return errors.Join(errs...)
}

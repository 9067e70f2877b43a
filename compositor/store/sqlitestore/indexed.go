package sqlitestore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/presencehub/presencehub/compositor/store"
)

// store.Indexed: totals from the publication_counts table that triggers
// keep in every write transaction (migration 3), lists by index.

// Counts implements store.Indexed.
func (s *Store) Counts(ctx context.Context) (store.Counts, error) {
	if s.isClosed() {
		return store.Counts{}, store.ErrClosed
	}
	rows, err := s.r.QueryContext(ctx, `SELECT key, n FROM publication_counts WHERE (key >= 'e:' AND key < 'e;') OR key = 'r'`)
	if err != nil {
		return store.Counts{}, fmt.Errorf("counts: %w", mapErr(err))
	}
	defer rows.Close()
	c := store.Counts{Events: map[string]int{}}
	for rows.Next() {
		var k string
		var n int
		if err := rows.Scan(&k, &n); err != nil {
			return store.Counts{}, fmt.Errorf("counts: %w", mapErr(err))
		}
		if ev, ok := strings.CutPrefix(k, "e:"); ok {
			if n > 0 {
				c.Events[ev] = n
			}
		} else {
			c.Resources = n
		}
	}
	if err := rows.Err(); err != nil {
		return store.Counts{}, fmt.Errorf("counts: %w", mapErr(err))
	}
	return c, nil
}

// CountPublisher implements store.Indexed.
func (s *Store) CountPublisher(ctx context.Context, publisher string) (int, error) {
	if s.isClosed() {
		return 0, store.ErrClosed
	}
	var n int
	err := s.r.QueryRowContext(ctx, `SELECT n FROM publication_counts WHERE key = ?`, "p:"+publisher).Scan(&n)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("count %q: %w", publisher, mapErr(err))
	}
	return n, nil
}

// Resources implements store.Indexed: a walk of the resource index.
func (s *Store) Resources(ctx context.Context, after string, offset, limit int) ([]string, error) {
	if s.isClosed() {
		return nil, store.ErrClosed
	}
	if limit <= 0 {
		return nil, nil
	}
	rows, err := s.r.QueryContext(ctx, `SELECT DISTINCT resource FROM publications INDEXED BY publications_by_resource
		WHERE resource > ? AND expires > ? ORDER BY resource LIMIT ? OFFSET ?`, after, s.now().UnixNano(), limit, max(offset, 0))
	if err != nil {
		return nil, fmt.Errorf("resources: %w", mapErr(err))
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var r string
		if err := rows.Scan(&r); err != nil {
			return nil, fmt.Errorf("resources: %w", mapErr(err))
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("resources: %w", mapErr(err))
	}
	return out, nil
}

// ListAt implements store.Indexed: one prepared statement (one snapshot
// of the WAL) returns the revision with the rows, at least one row (the
// revision) even when the resource has none.
func (s *Store) ListAt(ctx context.Context, resource string) ([]store.Publication, uint64, error) {
	if s.isClosed() {
		return nil, 0, store.ErrClosed
	}
	rows, err := s.stListAt.QueryContext(ctx, resource, s.now().UnixNano())
	if err != nil {
		return nil, 0, fmt.Errorf("list %q: %w", resource, mapErr(err))
	}
	defer rows.Close()
	var out []store.Publication
	var rev int64
	for rows.Next() {
		var id, res, event, etag, ctype, publisher sql.NullString
		var prev, expires, created, updated sql.NullInt64
		var body, meta []byte
		if err := rows.Scan(&rev, &id, &res, &event, &etag, &prev, &expires, &created, &updated,
			&ctype, &body, &publisher, &meta); err != nil {
			return nil, 0, fmt.Errorf("list %q: %w", resource, mapErr(err))
		}
		if !id.Valid {
			continue // no publication: the row only carries the revision
		}
		out = append(out, store.Publication{ID: id.String, Resource: res.String, Event: event.String, ETag: etag.String,
			Rev: uint64(prev.Int64), Expires: time.Unix(0, expires.Int64), Created: time.Unix(0, created.Int64),
			Updated: time.Unix(0, updated.Int64), ContentType: ctype.String, Body: nonNil(body), Publisher: publisher.String,
			Meta: nonNil(meta)})
	}
	if err := rows.Err(); err != nil {
		return nil, 0, fmt.Errorf("list %q: %w", resource, mapErr(err))
	}
	return out, uint64(rev), nil
}

// listAtSQL is ListAt's statement: store_rev LEFT JOIN the resource's
// live rows, in revision order.
const listAtSQL = `SELECT r.rev, p.id, p.resource, p.event, p.etag, p.rev, p.expires, p.created, p.updated,
	p.content_type, p.body, p.publisher, p.meta
	FROM store_rev r LEFT JOIN publications p ON p.resource = ? AND p.expires > ?
	WHERE r.id = 1 ORDER BY p.rev`

// Watch implements store.Indexed.
func (s *Store) Watch(ctx context.Context) (<-chan store.Change, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed.Load() {
		return nil, store.ErrClosed
	}
	return s.feed.Watch(ctx, s.rev, s.rev, func() ([]store.Publication, error) { return nil, nil })
}

// DeletePublisherPrefix implements store.Indexed. The counts table tells
// in O(log n) whether any such publisher exists; only then are the rows
// removed, in one statement.
func (s *Store) DeletePublisherPrefix(ctx context.Context, prefix string) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed.Load() {
		return 0, store.ErrClosed
	}
	lo, hi := "p:"+prefix, "p:"+prefixEnd(prefix)
	var one int
	err := s.w.QueryRowContext(ctx, `SELECT 1 FROM publication_counts WHERE key >= ? AND key < ? LIMIT 1`, lo, hi).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("delete publisher %q: %w", prefix, mapErr(err))
	}
	rev := s.rev
	var changes []store.Change
	err = s.txLocked(ctx, func() error {
		rows, err := s.w.QueryContext(ctx, `DELETE FROM publications WHERE publisher >= ? AND publisher < ? RETURNING `+columns,
			prefix, prefixEnd(prefix))
		if err != nil {
			return mapErr(err)
		}
		defer rows.Close()
		for rows.Next() {
			p, err := scanPub(rows)
			if err != nil {
				return mapErr(err)
			}
			rev++
			p.Rev = rev
			changes = append(changes, store.Change{Kind: store.ChangeDelete, Rev: rev, Pub: p})
		}
		if err := rows.Err(); err != nil {
			return mapErr(err)
		}
		rows.Close()
		_, err = s.stSetRev.ExecContext(ctx, int64(rev))
		return mapErr(err)
	})
	if err != nil {
		return 0, fmt.Errorf("delete publisher %q: %w", prefix, err)
	}
	s.rev = rev
	s.cp.committed(len(changes))
	s.feed.Publish(changes...)
	return len(changes), nil
}

// prefixEnd is the smallest string greater than every string starting
// with prefix ("" = no bound is not needed: prefixes are never empty here).
func prefixEnd(prefix string) string {
	b := []byte(prefix)
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] < 0xff {
			b[i]++
			return string(b[:i+1])
		}
	}
	return string(append([]byte(prefix), 0xff))
}

package sqlitestore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/presencehub/presencehub/compositor/store"
)

var _ store.Lists = (*Store)(nil)

// PutList implements store.Lists (migration 4). Lists are few and change
// rarely: written on the write connection outside the group commit.
func (s *Store) PutList(ctx context.Context, l store.ResourceList) error {
	members, err := json.Marshal(l.Members)
	if err != nil {
		return fmt.Errorf("put list %q: %w", l.Name, err)
	}
	names, err := json.Marshal(l.Names)
	if err != nil {
		return fmt.Errorf("put list %q: %w", l.Name, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed.Load() {
		return store.ErrClosed
	}
	_, err = s.w.ExecContext(ctx, `INSERT INTO resource_lists (name, event, members, names, updated) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (name) DO UPDATE SET event = excluded.event, members = excluded.members, names = excluded.names, updated = excluded.updated`,
		l.Name, l.Event, string(members), string(names), l.Updated.UnixNano())
	if err != nil {
		return fmt.Errorf("put list %q: %w", l.Name, mapErr(err))
	}
	return nil
}

// GetList implements store.Lists.
func (s *Store) GetList(ctx context.Context, name string) (store.ResourceList, error) {
	if s.closed.Load() {
		return store.ResourceList{}, store.ErrClosed
	}
	l, err := scanList(s.r.QueryRowContext(ctx, `SELECT name, event, members, names, updated FROM resource_lists WHERE name = ?`, name))
	if errors.Is(err, sql.ErrNoRows) {
		return store.ResourceList{}, fmt.Errorf("list %q: %w", name, store.ErrNotFound)
	}
	if err != nil {
		return store.ResourceList{}, fmt.Errorf("get list %q: %w", name, mapErr(err))
	}
	return l, nil
}

// DeleteList implements store.Lists.
func (s *Store) DeleteList(ctx context.Context, name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed.Load() {
		return store.ErrClosed
	}
	res, err := s.w.ExecContext(ctx, `DELETE FROM resource_lists WHERE name = ?`, name)
	if err != nil {
		return fmt.Errorf("delete list %q: %w", name, mapErr(err))
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("list %q: %w", name, store.ErrNotFound)
	}
	return nil
}

// AllLists implements store.Lists.
func (s *Store) AllLists(ctx context.Context) ([]store.ResourceList, error) {
	if s.closed.Load() {
		return nil, store.ErrClosed
	}
	rows, err := s.r.QueryContext(ctx, `SELECT name, event, members, names, updated FROM resource_lists ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("all lists: %w", mapErr(err))
	}
	defer rows.Close()
	var out []store.ResourceList
	for rows.Next() {
		l, err := scanList(rows)
		if err != nil {
			return nil, fmt.Errorf("all lists: %w", mapErr(err))
		}
		out = append(out, l)
	}
	return out, mapErr(rows.Err())
}

func scanList(sc scanner) (store.ResourceList, error) {
	var l store.ResourceList
	var members, names string
	var updated int64
	if err := sc.Scan(&l.Name, &l.Event, &members, &names, &updated); err != nil {
		return l, err
	}
	if err := json.Unmarshal([]byte(members), &l.Members); err != nil {
		return l, fmt.Errorf("members of %q: %w", l.Name, err)
	}
	if err := json.Unmarshal([]byte(names), &l.Names); err != nil {
		return l, fmt.Errorf("names of %q: %w", l.Name, err)
	}
	l.Updated = time.Unix(0, updated)
	return l, nil
}

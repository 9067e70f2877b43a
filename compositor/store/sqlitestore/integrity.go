package sqlitestore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
)

// ErrDamaged means the database file is damaged: SQLite's quick_check found
// problems in it, or an operation met a corrupt page. Ping returns it from
// then on, so the hub's /readyz says so.
var ErrDamaged = errors.New("database file is damaged")

// integrity checks the file once after Open, in the background: start-up
// reads no page it does not need (a damaged page would otherwise stay
// unseen until a PUBLISH hits it), and PRAGMA quick_check reads them all,
// which takes time proportional to the file. It runs on one read connection
// and ends early on Close.
type integrity struct {
	damage atomic.Pointer[error]
	cancel context.CancelFunc
	done   chan struct{}
}

func (in *integrity) start(s *Store, path string, log *slog.Logger) {
	ctx, cancel := context.WithCancel(context.Background())
	in.cancel, in.done = cancel, make(chan struct{})
	go func() {
		defer close(in.done)
		err := quickCheck(ctx, s)
		if err == nil || ctx.Err() != nil {
			return
		}
		if !errors.Is(err, ErrDamaged) {
			log.Warn("database check could not run", "db", path, "err", err)
			return
		}
		in.damaged(err)
		log.Error("database damaged: the hub is not ready; restore a backup, or move the file (and its -wal) away to start empty",
			"db", path, "err", err)
	}()
}

// damaged records err (wrapping ErrDamaged) as the store's lasting fault.
func (in *integrity) damaged(err error) { in.damage.CompareAndSwap(nil, &err) }

// fault is the recorded damage, or nil.
func (in *integrity) fault() error {
	if p := in.damage.Load(); p != nil {
		return *p
	}
	return nil
}

func (in *integrity) stop() {
	if in.cancel == nil {
		return
	}
	in.cancel()
	<-in.done
}

// quickCheck runs SQLite's PRAGMA quick_check (the b-tree structure of
// every page; not whether indexes match their tables) and reports what it
// found.
func quickCheck(ctx context.Context, s *Store) (err error) {
	defer func() {
		if err != nil && !strings.Contains(err.Error(), "quick_check") {
			err = fmt.Errorf("quick_check: %w", err)
		}
	}()
	rows, err := s.r.QueryContext(ctx, `PRAGMA quick_check(5)`)
	if err != nil {
		return mapErr(err)
	}
	defer rows.Close()
	var found []string
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			return mapErr(err)
		}
		if line != "ok" {
			found = append(found, line)
		}
	}
	if err := rows.Err(); err != nil {
		return mapErr(err)
	}
	if len(found) > 0 {
		return fmt.Errorf("%w: quick_check: %s", ErrDamaged, strings.Join(found, "; "))
	}
	return nil
}

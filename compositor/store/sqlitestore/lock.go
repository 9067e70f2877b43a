package sqlitestore

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// ErrLocked is returned by Open when another process holds the database:
// one hub per database file. Two hubs on one file would each keep their own
// revisions and change feed (split brain: different revisions, missed
// NOTIFYs); SQLite's own locks serialise their writes but not that.
var ErrLocked = errors.New("database is in use by another process")

// fileLock is an exclusive flock(2) on "<database>.lock", held from Open to
// Close. The kernel releases it when the process ends, kill -9 included, so
// a crash never leaves the database locked. The file holds the owner's pid,
// for the error message of the next one.
type fileLock struct{ f *os.File }

func lockPath(db string) string { return db + ".lock" }

func lock(db string) (*fileLock, error) {
	path := lockPath(db)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("sqlitestore: lock %s: %w", path, err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		b := make([]byte, 32)
		n, _ := f.ReadAt(b, 0)
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			owner := "another process"
			if pid, perr := strconv.Atoi(strings.TrimSpace(string(b[:n]))); perr == nil && pid > 0 {
				owner = "process " + strconv.Itoa(pid)
			}
			return nil, fmt.Errorf("sqlitestore: %s: %w: held by %s (lock file %s); one hub per database file", db, ErrLocked, owner, path)
		}
		return nil, fmt.Errorf("sqlitestore: lock %s: %w", path, err)
	}
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return &fileLock{f: f}, nil
}

// release drops the lock. The file stays: removing it would race with a
// process that has just opened it and is about to lock it.
func (l *fileLock) release() error {
	if l == nil {
		return nil
	}
	return l.f.Close()
}

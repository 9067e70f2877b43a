package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// checkDB says plainly why path cannot hold the hub's SQLite database (SQLite
// itself reports most of these as "unable to open database file" or "no such
// file"): not a regular file, not an SQLite file, or a directory the hub may
// not create its -wal and -shm files in. setting names the flag or variable.
func checkDB(path, setting string) error {
	if path == ":memory:" {
		return nil
	}
	fi, err := os.Stat(path)
	switch {
	case err == nil:
		if !fi.Mode().IsRegular() {
			return fmt.Errorf("%s=%s: not a regular file (%s); want the path of an SQLite database file", setting, path, fi.Mode().Type())
		}
		f, err := os.Open(path)
		if err != nil {
			return fmt.Errorf("%s=%s: %w", setting, path, err)
		}
		head := make([]byte, 16)
		n, _ := io.ReadFull(f, head)
		f.Close()
		if n > 0 && !bytes.Equal(head[:n], []byte("SQLite format 3\x00")[:n]) || n > 0 && n < 16 {
			return fmt.Errorf("%s=%s: not an SQLite database (it begins %q); want the path of an SQLite database file, or of a new one", setting, path, head[:n])
		}
	case errors.Is(err, os.ErrNotExist):
	default:
		return fmt.Errorf("%s=%s: %w", setting, path, err)
	}
	dir := filepath.Dir(path)
	di, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("%s=%s: directory %s: %w", setting, path, dir, err)
	}
	if !di.IsDir() {
		return fmt.Errorf("%s=%s: %s is not a directory", setting, path, dir)
	}
	probe, err := os.CreateTemp(dir, ".presencehub-probe-*")
	if err != nil {
		return fmt.Errorf("%s=%s: the hub cannot create files in %s (SQLite keeps its -wal and -shm files beside the database): %w", setting, path, dir, err)
	}
	probe.Close()
	os.Remove(probe.Name())
	return nil
}

package sqlitestore

import "context"

// WALFrames checkpoints the WAL and returns how many frames (pages) the
// store has written to it since Open: pages per commit for benchmarks.
func WALFrames(s *Store) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	err := s.cp.fullLocked(context.Background())
	return s.cp.frames, err
}

package sqlitestore

import (
	"sync/atomic"

	"github.com/presencehub/presencehub/compositor/store"
)

// commitCounter counts the group commits of Create, Replace and Delete
// (write.go) by writes per transaction; read at any time by CommitStats.
type commitCounter struct {
	commits, writes atomic.Uint64
	buckets         [store.CommitBuckets]atomic.Uint64
}

func (c *commitCounter) add(writes int) {
	c.commits.Add(1)
	c.writes.Add(uint64(writes))
	c.buckets[store.CommitBucket(writes)].Add(1)
}

// CommitStats implements store.Batching: the transactions that committed
// Create, Replace and Delete calls, by how many each carried.
func (s *Store) CommitStats() store.CommitStats {
	var st store.CommitStats
	for i := range st.Buckets {
		st.Buckets[i] = s.stats.buckets[i].Load()
	}
	st.Writes = s.stats.writes.Load()
	st.Commits = s.stats.commits.Load()
	return st
}

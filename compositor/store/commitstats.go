package store

import "math/bits"

// CommitBuckets is the number of CommitStats buckets: transactions of 1, 2,
// 4, … 256 or more writes.
const CommitBuckets = 9

// CommitStats counts the transactions of a store that commits concurrent
// writes together (group commit) by how many writes each carried: what
// operators read as "writes per commit" (the fewer commits per write, the
// less each write costs).
type CommitStats struct {
	Commits uint64 // transactions committed
	Writes  uint64 // writes they carried (Create, Replace, Delete; failed compare-and-swaps included)
	// Buckets[i] counts the transactions of at most 2^i writes (not
	// cumulative); the last one also those above.
	Buckets [CommitBuckets]uint64
}

// CommitBucket is the CommitStats bucket of a transaction of n ≥ 1 writes.
func CommitBucket(n int) int {
	if n <= 1 {
		return 0
	}
	return min(bits.Len(uint(n-1)), CommitBuckets-1)
}

// Batching is a store that commits concurrent writes together and counts
// its transactions.
type Batching interface {
	CommitStats() CommitStats
}

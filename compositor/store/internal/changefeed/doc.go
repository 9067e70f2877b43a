// Package changefeed fans committed store changes out to Changes streams.
// A store calls Publish after each commit, in revision order, while holding
// its write lock; each watcher has an unbounded queue drained by one pump
// goroutine, so a slow consumer never blocks a commit.
package changefeed

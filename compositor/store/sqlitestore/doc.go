// Package sqlitestore is the durable store.Store on SQLite
// (github.com/mattn/go-sqlite3), the default for presencehub.
//
// Durability: the database runs in WAL mode with synchronous=NORMAL by
// default. A commit is in the WAL (the OS page cache) before Create/Replace/
// Delete return, so every PUBLISH answered 2xx survives kill -9 of the
// process; only a power loss or kernel crash can lose the last commits before
// a checkpoint. That is the right trade for RFC 3903 soft state, which
// clients refresh anyway, and it is what makes thousands of PUBLISH/s
// possible (synchronous=FULL fsyncs the WAL on every commit, bounded by the
// disk's fsync rate). Options.Synchronous = "FULL" gives power-loss safety.
//
// Layout: one embedded schema file (schema.sql) applied as migration 1 and
// recorded in schema_migrations; later files (migrate_00N_*.sql) are
// applied in order, once. One dedicated write connection with prepared
// statements serialises commits, which assigns revisions without gaps; a
// small read pool serves lookups (WAL readers never block the writer).
// Every SQL statement uses bound parameters.
//
// Table (migration 6): publications is a rowid table with the id as a
// UNIQUE column, indexed by resource and by expiry. A PUBLISH rewrites the
// row's leaf page, the expiry index entry and the revision row, and
// nothing else: the entity-tag has no index (it is new on every PUBLISH);
// FindByETag looks it up among the resource's rows, and a write that would
// give a resource's entity-tag to a second publication of that resource
// fails with store.ErrConflict. Triggers keep the counts of store.Indexed
// in the same transactions; a write committed alone records the store
// revision through its trigger, a group commit once at its end
// (migration 7).
//
// Group commit (write.go): concurrent Create/Replace/Delete calls share one
// transaction, each with its own compare-and-swap, each answered only after
// the COMMIT; a lone write commits at once. WAL checkpoints run on their
// own connection and goroutine (checkpoint.go), not inside a commit.
//
// Expiry: one timer for the whole store, armed for the earliest expiry.
// Open removes publications that expired while the process was down; the
// remaining ones expire at their stored time.
package sqlitestore

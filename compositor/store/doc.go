// Package store defines how the Event State Compositor (RFC 3903) keeps
// publications: the Store interface, the Publication record and the Change
// feed that every implementation streams.
//
// The shape follows NkSIP's sip_event_compositor_store (get, put with TTL,
// delete, delete all, list by resource, expire; docs/architecture.md,
// "Store"), so that a replicated store (NATS JetStream Key-Value) can be
// dropped in later:
//
//   - every commit has a revision, strictly increasing;
//   - updates are compare-and-swap on the revision the caller read
//     (Replace(p, ifRev), Delete(id, ifRev)); losing the race is ErrConflict;
//   - a publication has a stable random ID; its entity-tag changes on every
//     successful PUBLISH;
//   - expiry happens inside the store and comes out as a ChangeExpire;
//   - Changes streams a snapshot of live publications and then every
//     committed change, in revision order.
//
// Implementations: sqlitestore (durable, the default) and memstore (tests,
// development). Both pass the one conformance suite in storetest. A store
// that commits concurrent writes together (group commit) may report how
// many writes each transaction carried (Batching, CommitStats).
package store

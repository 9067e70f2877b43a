// Package natsstore keeps publications in a NATS JetStream Key-Value
// bucket, so that several hubs share one replicated state (the engine
// replicates; nothing here does).
//
// Layout: one bucket (History 1, R3 by default), one key per publication,
// "<AOR>.<event>.<id>" with every byte outside [A-Za-z0-9_-] written as
// "=XX"; the value is the publication as JSON. The key's revision (the
// stream sequence) is the store revision.
//
//   - Create publishes with an expected last subject sequence of 0, Replace
//     and Delete with the revision the caller read: a lost race is
//     store.ErrConflict (SIP 412).
//   - Every put carries a per-message TTL (Nats-TTL, whole seconds, rounded
//     up) and the bucket has LimitMarkerTTL: when the TTL runs out the
//     server itself removes the key and leaves one "MaxAge" marker that
//     every watcher sees once (store.ChangeExpire). KeyValue.Update would
//     drop the TTL (nats.go#1994), so writes are published directly with
//     the expected-last-subject-sequence header plus Nats-TTL.
//   - Delete (and Expire, for an expiry noticed by the caller's clock before
//     the server's) writes a purge marker with a TTL, so deleted keys do
//     not pile up.
//   - Each Store follows the bucket with one ephemeral consumer from its last
//     sequence: after a reconnect or a lost consumer (missing heartbeats, a
//     gap in the delivery sequence) it resumes at the next sequence, never
//     skipping or repeating one. After an outage longer than half of
//     MarkerTTL (markers of removals may be gone) it reads the bucket again
//     and reports what vanished as removed (resync.go). That consumer keeps an
//     in-memory copy that answers reads and feeds Changes. A read that
//     misses first waits until the copy caught up with the stream's last
//     sequence, so a publication written through another hub is found.
//   - Writes that cannot be acknowledged in time (a NATS leader election,
//     no connection) are store.ErrBusy (SIP 503 + Retry-After). Such a write
//     may still be stored; the store resends it with the same Nats-Msg-Id
//     until JetStream says, and if it was stored writes back the version
//     before it (doubt.go): what callers were told is what stays.
package natsstore

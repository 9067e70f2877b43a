// Package loadgen is presencehub's load generator: the engine of
// `presencehub bench`. It speaks SIP over WebSocket (RFC 7118) to a hub,
// with tokens, like the browser and PBX clients do. It imports nothing of
// the hub but the shared header-line scanner (internal/siprule): it is a
// client, reaching the hub only through its socket.
//
// Two runs:
//   - Load (Run): S subscriber sockets hold K dialog-event subscriptions each
//     (RFC 6665, RFC 4235) over R resources; P publisher sockets change the
//     resources' dialog state with PUBLISH (RFC 3903, SIP-If-Match chains)
//     as fast as possible or at a fixed rate, for a bounded time. Every
//     NOTIFY is answered 200 and checked: dialog-info version +1 per
//     subscription (RFC 4235 §4.1), no body sent twice in a row (the hub's
//     deduplication), no state going backwards, and, at the end, every
//     subscription showing the last state published for its resource.
//     The published body carries the send time and a sequence number in the
//     dialog's local target URI, so each NOTIFY gives one PUBLISH→NOTIFY
//     latency sample.
//   - Idle (RunIdle): N sockets with one subscription each, holding still;
//     the hub's resident memory per socket is (RSS after − RSS before) / N.
//     Sockets beyond one process's file-descriptor limit are held by worker
//     processes (IdleWorker).
//
// The generator shares the machine with the hub, so its hot path is
// hand-rolled: its own RFC 6455 client (wsclient.go; not wsproto, which
// writes each message with its own write(2)) batches the answers to a read
// burst into one write, and SIP messages are built with append and parsed
// by scanning header lines (sipmsg.go, siprule.HeaderLines), without sipgo. Each socket's state
// is touched only by its own read goroutine.
//
// Hub resource use (RSS, CPU) comes from /proc/<pid>; Spawn starts a hub as
// a child process so its pid is known. Everything runs on loopback, bounded
// in counts and time.
package loadgen

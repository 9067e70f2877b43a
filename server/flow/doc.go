// Package flow is the hub's side of one client connection: a "flow" in the
// sense of RFC 5626 §3. It holds who the client is (its token identity), writes
// the hub's responses back on the connection the request came in on
// (RFC 7118 §5; the client's Via and Contact hosts are *.invalid), and is the
// small non-INVITE client transaction layer for requests the hub sends
// (NOTIFY): it makes their branches (NewBranch), matches responses to them by
// the top Via branch (RFC 3261 §17.1.3; ScanAnswer does it for a plain final
// response without a parse) and fails them after Timer F (64*T1 = 32 s,
// RFC 3261 §17.1.2.2; one sweep timer per flow, running while requests
// wait, instead of a timer per request). On a reliable transport nothing is retransmitted and
// no 100 Trying is sent. A sender with several requests for one flow queues them with
// RequestHeld and wakes the writer once with Kick, so that they leave in one write.
package flow

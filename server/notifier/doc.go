// Package notifier is the RFC 6665 notifier: it keeps subscription dialogs
// for the dialog (RFC 4235) and presence (RFC 3856) event packages and sends
// their NOTIFYs back over the flow each subscriber uses.
//
// Bodies come from providers registered for an (event, content type) pair
// (see Provider); several may register for one pair and each decides from the
// subscription whether it handles it. A body is rendered once per state change
// and variant and shared by every subscription that gets the same bytes; each
// subscription only adds its dialog headers, CSeq, branch and version.
//
// Rules kept here, with where they come from:
//   - the 200 to SUBSCRIBE is queued on the flow before the first NOTIFY
//     (RFC 6665 §4.2.1.1; JsSIP answers 481 otherwise);
//   - one NOTIFY in flight per subscription, later state coalesced behind it,
//     so NOTIFYs of a subscription arrive in order (RFC 6665 §4.2.2);
//   - a NOTIFY is sent only when the body the subscriber would get differs,
//     apart from version, from the last one (deduplication);
//   - a NOTIFY answered 481 (or any failure) ends the subscription, and no
//     NOTIFY follows the final one (RFC 6665 §4.2.2, §4.1.3);
//   - a subscription whose flow closed waits a grace period for the client to
//     come back on a new flow of the same identity (JsSIP reconnects and keeps
//     using its dialogs); CSeq keeps rising across the rebind.
//
// Cost: the NOTIFYs of one round of changes are queued on their flows without
// waking the writers (flow.RequestHeld) and each flow is woken once at the end
// of the round (round.go), so a socket's NOTIFYs of a round leave in one
// write(2); NOTIFY buffers come back from the writers for reuse (bufpool.go).
package notifier

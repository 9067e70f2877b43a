// Package providers holds the hub's built-in NOTIFY body providers. They use
// only the notifier's public provider API, as an integration's own would:
//
//   - dialog   → application/dialog-info+xml (RFC 4235): state="full", entity
//     = the watched AOR, version per subscription, each live dialog with
//     direction, call-id, tags, state, and local/remote identity and target
//     when known (what a phone needs for call pickup);
//   - presence → application/pidf+xml (RFC 3863): the composed tuples, person
//     and notes; basic "closed" when nothing is published.
package providers

// Package compositor is presencehub's Event State Compositor (RFC 3903):
// it processes PUBLISH requests for the presence (RFC 3856, PIDF) and
// dialog (RFC 4235) event packages, keeps the published state in a
// store.Store, composes one view per (resource, event) and tells
// subscribers when a composed view changed.
//
// It has no SIP or WebSocket code. The SIP layer fills a PublishRequest
// from the PUBLISH, calls Publish, and maps the result (200 with SIP-ETag
// and Expires) or the *Error (status code and headers) to the response.
//
// Processing follows RFC 3903 §6 step by step: event package (489), the
// SIP-If-Match precondition (400, 412), expiration (the lifetime the SIP
// layer granted under its expiry policy, which answers 423 itself; 0
// removes), the body (415, 400, 413), then one atomic store write; every
// success gets a new random entity-tag. A failed store write
// answers 500 or 503 and changes nothing.
//
// Views are served from memory and kept current from the store's change
// feed (docs/architecture.md, "Store"): the PUBLISH path applies its own
// commit at once (read-your-writes), and a single feed goroutine applies every change
// (including expiry and other writers), re-composes the resource and calls
// the Subscribe callbacks only when the composed view really changed.
// Publish records the parsed body of each write while it is in flight
// (flight.go), so that whichever path applies the commit first does not
// parse the body again.
//
// Composition: PIDF tuples are united, a newer tuple with the same id wins;
// persons and notes are kept. Dialogs are united, a newer dialog with the
// same id wins. A dialog that was reported terminated leaves a tombstone
// (Config.TombstoneTTL, carried inside the publications so it survives a
// restart); a late non-terminal state for that dialog id is ignored, so an
// out-of-order "early" never brings back a lamp that went dark. With no
// live publication the presence view is one tuple "none" with basic
// closed, and the dialog view has no dialogs.
package compositor

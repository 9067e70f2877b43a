// Package server is presencehub's SIP-over-WebSocket front end and wiring.
//
// Data path (docs/architecture.md): a WebSocket message (package wsproto) is parsed as
// one SIP message (sipgo's sip package); the request is authenticated
// (package auth) and dispatched by method: REGISTER to the registrar, PUBLISH
// to the Event State Compositor (package compositor), SUBSCRIBE to the
// notifier; responses to the hub's own NOTIFYs complete their client
// transaction on the flow (package flow). The compositor's change feed drives
// the notifier, which renders bodies through providers and queues NOTIFYs on
// each subscriber's flow.
//
// A PUBLISH in the plain form clients and PBXs send (siprule.ScanPlain) skips
// sipgo's parse: it is read in place and answered by copying its Via, From,
// To, Call-ID and CSeq lines (RFC 3261 §8.2.6.2; plain.go); any other message
// takes the path above. A connection's PUBLISHes run in lanes (lanes.go): one
// resource's in the order they were read, different resources' at the same
// time, so that they share the store's commits (RFC 3903 §4 allows several in
// flight), with at most a bounded number read and unanswered per connection.
//
// Every request that is wrong gets a SIP error response with a reason phrase;
// a message that cannot be answered (no Via, Call-ID, CSeq, From or To) is
// dropped, and the connection keeps working.
package server

// Package feed serves the hub's composed state as Server-Sent Events (the
// WHATWG HTML "Server-sent events" format, text/event-stream) for
// wallboards and apps that do not speak SIP: GET /api/feed
// (docs/protocol.md, "State feed").
//
// The feed follows the same change stream as the notifier (the
// compositor's Subscribe, through OnChange) and reads the same composed
// views; it never parses a NOTIFY. For each followed resource it keeps the
// dialog and presence views, decides the lamp (LampOf: the console's
// rules, once in Go) and renders the resource's JSON once per change for
// each combination of event packages a client may ask for. A change whose
// JSON is the same as before is no event (the same state twice is one
// event, as for NOTIFYs).
//
// Every event has an id from one increasing sequence (starting at the
// hub's start time in microseconds, so ids of an earlier run are lower).
// The last Config.Replay events are kept: a client that reconnects with
// Last-Event-ID gets the events it missed, or a fresh snapshot when the
// buffer no longer reaches back that far or a resource was not followed
// all that time. A resource stays followed for Config.Linger after its
// last client left, so a reconnecting client resumes.
//
// Each client has a bounded queue filled by OnChange without blocking; a
// client whose queue is full is marked, its queue dropped, and it gets a
// fresh snapshot when its writer catches up: a slow client costs a
// snapshot, never a growing queue. A write that takes longer than
// Config.WriteTimeout ends the stream.
//
// Authorization, limits and the HTTP front (query parsing, tokens, CORS)
// are the server's (package server); this package gets a Request with the
// resources already authorized.
package feed

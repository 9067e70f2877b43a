// Package pidf is the Presence Information Data Format (RFC 3863) model
// used by the Event State Compositor: Parse validates a published
// application/pidf+xml body, Compose unites several documents into one
// view (RFC 3903 composition), and AppendXML renders a document with a
// hand-written, escaping appender.
//
// What is kept: tuples (id, status/basic, other status children, contact
// with priority, notes with xml:lang, timestamp, extension children),
// document notes, dm:person elements (RFC 4479, with their RPID RFC 4480
// content) and other top-level extension elements such as dm:device, as
// element trees. Extension elements are re-serialised with the well-known
// prefixes (dm, rpid, c, caps) or a default-namespace declaration; the
// original prefixes, comments and the position of text among child
// elements are not kept.
package pidf

// Package dialoginfo is the dialog state model (RFC 4235,
// application/dialog-info+xml) used by the Event State Compositor: Parse
// validates a published body (read by a scanner straight into the
// Document, no tree), and Document.AppendXML renders the full state of a
// resource's dialogs with a hand-written, escaping appender;
// Document.AppendTemplate renders it with a slot for the per-subscription
// version number.
//
// Kept per dialog: id, call-id, local-tag, remote-tag, direction, state
// with its event and code attributes, and the local and remote
// participants' identity (with display name) and target URI. Other
// elements (duration, replaces, referred-by, route-set, session
// descriptions, extensions) are accepted and dropped: BLF needs none of
// them.
package dialoginfo

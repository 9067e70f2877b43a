// Package web serves the attendant console: a static page, embedded in the binary, that shows a
// busy-lamp field (BLF) of watched extensions in the browser.
//
// The console is plain HTML, CSS and ES modules (static/), with no build step, no framework and
// no third-party code. It talks to nothing but the hub: SIP over WebSocket (RFC 7118, subprotocol
// "sip") on the same origin at /ws, with its own small SIP subscriber (static/sipws.js). For each
// watched extension it SUBSCRIBEs to the dialog package (RFC 4235, application/dialog-info+xml)
// and the presence package (RFC 3856, application/pidf+xml), answers every NOTIFY, refreshes
// before expiry, un-SUBSCRIBEs when the page goes away, answers and sends CRLF keepalives
// (RFC 5626 §4.4.1), and after a lost connection reconnects with jittered exponential back-off
// (1 s to 30 s) and subscribes afresh. A terminated subscription is retried as RFC 6665 §4.1.3
// says for its reason.
//
// Page URL parameters:
//
//	token=<jwt>          access token (as printed by presencehub); moved to sessionStorage and
//	                     removed from the address bar. Sent as ?access_token= on the WebSocket.
//	ext=1001,1002:Sales  watched extensions, each optionally with a name; remembered in
//	                     localStorage. Also editable in the page.
//
// The token's sub claim is the console's own user part; its domain claim, when present, is the
// SIP domain of every AOR (sip:<ext>@<domain>), else the page's host name.
//
// Lamps (static/blf.js has the exact rules): idle (green), ringing (blinking red, an early dialog
// towards the extension; the caller is shown), calling (red ring, an early dialog from it), busy
// (red, a confirmed dialog), hold (amber, confirmed dialogs whose local target has
// +sip.rendering=no, or presence on-the-phone with a note mentioning hold), offline (grey,
// presence closed and no dialog), unknown (hollow grey: no current dialog state, for instance
// while the socket is down, so a lamp never shows stale state). Each lamp is a focusable list
// item with data-ext and data-state attributes that tests can rely on.
//
// Handler serves the files with exact content types (text/javascript for modules), Cache-Control
// no-cache with an ETag, and a Content-Security-Policy that allows nothing but the page's own
// files and WebSocket connections to its own host.
package web

// Package wsproto is the SIP-over-WebSocket transport of presencehub (RFC 7118), built on
// github.com/coder/websocket.
//
// It implements:
//   - the RFC 6455 §1.9 subprotocol negotiation RFC 7118 §4.1 requires: a handshake that does
//     not offer "sip" is refused with HTTP 400 before upgrading, and "sip" is echoed;
//   - an Origin allow-list for browsers (same-origin by default; requests without Origin,
//     which come from non-browser clients, are allowed);
//   - RFC 7118 §5.1 framing: text and binary frames, exactly one SIP message per frame,
//     with a size limit (close 1009 when exceeded);
//   - liveness: WebSocket ping/pong (RFC 6455 §5.5.2) with a timeout, and the RFC 5626 §4.4.1
//     double-CRLF keepalive, answered with a single CRLF;
//   - one writer per connection behind a bounded queue, so a consumer that cannot keep up is
//     closed (1008 "slow consumer") instead of growing memory, and never slows other
//     connections down; what queued meanwhile leaves in one write(2), framed by the writer
//     itself on a server connection without compression (coder/websocket frames when it
//     compresses), and a message sent with SendRecycle is handed back once copied; a sender
//     with several messages for one connection queues them with SendHeld and wakes the
//     writer once with Kick, so that they leave together;
//   - burst reads (burst.go, on unix): a socket is read with one read(2) per burst of incoming
//     bytes into a pooled buffer taken only once it is readable, so a peer that writes many
//     frames at once costs one read, and an idle connection holds no read buffer.
//
// A Conn comes from Accept (server) or Dial (client). Serve runs it: it owns every goroutine
// it starts and returns only after all of them have ended.
package wsproto

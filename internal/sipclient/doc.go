// Package sipclient is a minimal SIP-over-WebSocket user agent: enough to
// REGISTER, PUBLISH and SUBSCRIBE against the hub and to answer its NOTIFYs.
// The `presencehub publish` command and the tests of server, web and
// cmd/presencehub use it; it imports nothing of the hub and speaks to it
// only through a real WebSocket (package wsproto, RFC 7118), like JsSIP
// and SIP.js do, with a *.invalid Via and Contact host.
package sipclient

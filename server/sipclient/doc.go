// Package sipclient is a minimal SIP-over-WebSocket user agent: enough to
// REGISTER, PUBLISH and SUBSCRIBE against the hub and to answer its NOTIFYs.
// The hub's tests, the `presencehub publish` command and the load generator
// use it; it speaks to the hub only through a real WebSocket (package
// wsproto), like JsSIP and SIP.js do, with a *.invalid Via and Contact host.
package sipclient

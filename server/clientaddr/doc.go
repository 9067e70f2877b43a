// Package clientaddr finds a client's own address when it reaches the hub
// through reverse proxies (nginx, HAProxy, a Kubernetes ingress), so that
// per-address limits, Via received (RFC 3261 §18.2.1), the trust of a PBX
// by its address, and logs see the client rather than the proxy.
//
// Only peers in the configured trusted networks are believed, by two means:
//   - the PROXY protocol, v1 or v2 (HAProxy's specification), read by
//     Listener on connections from a trusted peer (optional there: a trusted
//     peer that sends none keeps its own address); a connection from any
//     other peer is passed on untouched, so its PROXY header is no header
//     at all but bytes of the request, which the HTTP or SIP parser refuses;
//   - X-Forwarded-For on HTTP requests from a trusted peer, taken by
//     Handler from the right: the first address that is not itself a
//     trusted proxy (the right-most-trusted rule of realclientip-go); a
//     header from any other peer is ignored.
package clientaddr

// Package natsreg is a registrar.Store on a NATS JetStream Key-Value bucket,
// shared by every hub of a cluster (docs/architecture.md, "Several hubs"):
// a REGISTER 200 on any hub lists the AOR's bindings on all of them
// (RFC 3261 §10.3), Contact: * removes them all, and the bound on bindings
// per AOR holds across hubs.
//
// One key per AOR holds its bindings, each naming the hub whose socket
// carries it. Every write is a compare-and-swap on the key's last revision
// (expected last subject sequence) with a per-message TTL of the last
// binding's expiry plus grace, so the bindings of a hub that died vanish
// with their expiry; a hub removes its own when their socket closes.
package natsreg

// Package registrar binds an address-of-record to the WebSocket flow a
// softphone registered on (RFC 3261 §10.3, RFC 5626 flows, RFC 7118 §5), so
// that JsSIP and SIP.js register and stay registered unchanged.
//
// Client quirks it honours (docs/protocol.md, "What JsSIP and SIP.js
// need"): the 200 echoes every Contact with ";expires=N" (SIP.js
// re-registers in a loop without it) and keeps +sip.instance and reg-id
// (JsSIP matches on them); SIP.js sends no Expires header and refreshes at
// 99 % of the grant, so a binding lives a grace period past its expiry.
// Bindings end with their flow.
//
// Bindings live in a Store, one record per AOR replaced by compare-and-swap:
// NewMemory for a hub on its own, natsreg for hubs sharing them, where a
// REGISTER 200 on any hub lists every hub's bindings and the bound per AOR
// counts them all.
package registrar

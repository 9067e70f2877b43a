// Package siprule holds the SIP rules that the registrar, the compositor's
// SIP front end (PUBLISH) and the notifier share, each written once:
//
//   - Expires values (RFC 3261 §20.19, §25.1 delta-seconds): ParseExpires and
//     Expires read them, white space trimmed, a huge value clamped rather
//     than wrapped;
//   - the expiry grant (RFC 3261 §10.3 step 7, RFC 3903 §6 step 3, RFC 6665
//     §4.2.1.1): ExpiryPolicy gives the default when none is asked for, 423
//     Interval Too Brief with Min-Expires below the minimum, and lowers a
//     longer request to the maximum;
//   - the canonical address-of-record "sip:user@host" (AOR);
//   - host, sent-by and token syntax (RFC 3261 §25.1);
//   - the Event header with its compact form (RFC 6665 §8.2.1) and the
//     Server header the hub puts on its responses;
//   - HeaderLines, the header-line scanner for the paths that look at a few
//     header values without parsing the message (RFC 3261 §7.3);
//   - ScanPlain, which reads a request in the plain form clients and PBXs
//     send without sipgo's parse, to the values sipgo would read, keeping
//     the header values its answer copies (RFC 3261 §8.2.6.2); anything
//     else is left to sipgo.
//
// The compositor itself has no SIP in it: the front end grants the lifetime
// of a publication here and hands the compositor the granted seconds.
package siprule

// Package auth decides who a SIP-over-WebSocket client is and what it may do.
//
// Identity comes from a JSON Web Token (RFC 7519) presented as the access_token
// query parameter or an "Authorization: Bearer" header at the WebSocket upgrade,
// or as "Authorization: Bearer" on a SIP request (RFC 8898). Tokens are verified
// with a static key (an HS256 secret or a PEM public key: RS256, ES256 or
// EdDSA) and/or the JSON Web Key Sets (RFC 7517) of identity providers, each
// optionally bound to its issuer, fetched and refreshed with keyfunc/jwkset
// (on a schedule, and on an unknown kid at a limited rate). Only signature
// keys whose alg and type fit the token's alg verify; "alg: none" and
// algorithm confusion are refused.
//
// Claims: sub (the user part; the AOR is sip:<sub>@<domain>), exp (required,
// exact: the identity's Expires, which also ends the connection), nbf/iat
// (honoured with a small leeway), all three JSON numbers (RFC 7519 §2),
// iss/aud (checked when configured), publish and subscribe (arrays of user
// parts, or ["*"] for every user of the domain; defaults: the sub itself,
// matched literally, and ["*"]) and admin (boolean, for the admin API).
package auth

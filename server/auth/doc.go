// Package auth decides who a SIP-over-WebSocket client is and what it may do.
//
// Identity comes from a JSON Web Token (RFC 7519) presented as the access_token
// query parameter or an "Authorization: Bearer" header at the WebSocket upgrade,
// or as "Authorization: Bearer" on a SIP request (RFC 8898). Tokens are verified
// with exactly one configured key: an HS256 secret or a PEM public key (RS256,
// ES256 or EdDSA); "alg: none" and algorithm confusion are refused by
// jwt.WithValidMethods.
//
// Claims: sub (the user part; the AOR is sip:<sub>@<domain>), exp (required),
// nbf/iat (honoured with a small leeway), iss/aud (checked when configured),
// publish and subscribe (arrays of user parts, or ["*"] for every user of the
// domain; defaults [sub] and ["*"]) and admin (boolean, for the admin API).
package auth

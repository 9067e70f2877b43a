package compositor

import (
	"crypto/rand"
	"encoding/base32"
	"encoding/hex"
)

var etagEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// newETag returns an unguessable entity-tag (RFC 3903 §6 step 6: a new
// one on every successful PUBLISH): 128 random bits, 26 characters of
// lower-case base32, a valid SIP token.
func newETag() string {
	var b [16]byte
	rand.Read(b[:]) // never fails (crypto/rand, Go 1.24+)
	return etagEncoding.EncodeToString(b[:])
}

// newID returns a publication's stable random identifier.
func newID() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

package auth_test

import (
	"crypto/elliptic"
	"crypto/x509"
	"encoding/pem"
	"testing"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/golang-jwt/jwt/v5"
	"github.com/presencehub/presencehub/server/auth"
)

// BenchmarkVerify: one token verified at an upgrade, by the static secret
// and by a key of a JWK Set held in memory (no fetch on the path).
func BenchmarkVerify(b *testing.B) {
	es := newKey(b, "es", ecKey(b, elliptic.P256()), jwkset.AlgES256, jwkset.UseSig)
	rs := newKey(b, "rs", rsaKey(b), jwkset.AlgRS256, jwkset.UseSig)
	p := newIDP(b, es.jwk, rs.jwk)
	v, err := auth.NewVerifier(auth.Config{Domain: "hub.test", Secret: secret, JWKS: []auth.JWKS{{Issuer: "https://idp.example.com/", URL: p.url()}}})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(v.Close)
	der, err := x509.MarshalPKIXPublicKey(rs.priv.Public())
	if err != nil {
		b.Fatal(err)
	}
	pemV := verifier(b, auth.Config{PublicKeyPEM: pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})})
	for _, bb := range []struct {
		name string
		tok  string
		v    *auth.Verifier
	}{
		{"PEM RS256 (baseline for JWKS RS256)", signingKey{priv: rs.priv}.token(b, jwt.SigningMethodRS256, ""), pemV},
		{"HS256 secret", sign(b, jwt.SigningMethodHS256, secret, jwt.MapClaims{"sub": "1001", "exp": time.Now().Add(time.Hour).Unix()}), nil},
		{"JWKS ES256", es.token(b, jwt.SigningMethodES256, "https://idp.example.com/"), nil},
		{"JWKS RS256", rs.token(b, jwt.SigningMethodRS256, "https://idp.example.com/"), nil},
	} {
		b.Run(bb.name, func(b *testing.B) {
			b.ReportAllocs()
			vv := v
			if bb.v != nil {
				vv = bb.v
			}
			for b.Loop() {
				if _, err := vv.Verify(bb.tok); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

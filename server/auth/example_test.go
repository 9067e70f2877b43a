package auth_test

import (
	"fmt"
	"time"

	"github.com/presencehub/presencehub/server/auth"
)

// A PBX integration token may publish for every user; a watcher's may not.
func Example() {
	secret := []byte("0123456789abcdef0123456789abcdef")
	signer := auth.Signer{Secret: secret, Domain: "example.com"}
	tok, _ := signer.Mint("pbx", time.Hour, func(c *auth.Claims) { c.Publish = []string{"*"} })

	v, _ := auth.NewVerifier(auth.Config{Secret: secret, Domain: "example.com"})
	id, err := v.Verify(tok)
	fmt.Println(id.AOR, err)
	fmt.Println(id.CanPublish("1001", "example.com"), id.CanSubscribe("1001", "example.com"))
	// Output:
	// sip:pbx@example.com <nil>
	// true true
}

// A JWKS entry binds an identity provider's key set to its issuer.
func ExampleParseJWKS() {
	j, _ := auth.ParseJWKS("https://sso.example.com/realms/acme=https://sso.example.com/realms/acme/protocol/openid-connect/certs")
	fmt.Println(j.Issuer)
	fmt.Println(j.URL)
	// Output:
	// https://sso.example.com/realms/acme
	// https://sso.example.com/realms/acme/protocol/openid-connect/certs
}

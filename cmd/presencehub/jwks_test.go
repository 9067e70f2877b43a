package main

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/golang-jwt/jwt/v5"
	"github.com/presencehub/presencehub/internal/sipclient"
)

// An identity provider in the style of Keycloak: a JWKS endpoint whose
// signing key rotates; the hub binary verifies its tokens at the upgrade.
func TestServe_JWKS_IdentityProviderTokensAndRotation(t *testing.T) {
	const issuer = "https://sso.example.com/realms/acme"
	type key struct {
		kid  string
		priv *rsa.PrivateKey
	}
	newKey := func(kid string) key {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			t.Fatal(err)
		}
		return key{kid, k}
	}
	var mu sync.Mutex
	published := []key{newKey("2026-11")}
	idp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		var set jwkset.JWKSMarshal
		for _, k := range published {
			j, err := jwkset.NewJWKFromKey(&k.priv.PublicKey, jwkset.JWKOptions{Metadata: jwkset.JWKMetadataOptions{KID: k.kid, ALG: jwkset.AlgRS256, USE: jwkset.UseSig}})
			if err != nil {
				t.Error(err)
			}
			set.Keys = append(set.Keys, j.Marshal())
		}
		_ = json.NewEncoder(w).Encode(set)
	}))
	defer idp.Close()
	h := startHub(t, "PRESENCEHUB_JWKS_URL="+issuer+"="+idp.URL+"/protocol/openid-connect/certs",
		"PRESENCEHUB_JWT_AUDIENCE=presencehub", "PRESENCEHUB_JWKS_UNKNOWN_KID_INTERVAL=50ms")
	token := func(k key, iss string) string {
		tok := jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.MapClaims{"sub": "1001", "iss": iss, "aud": "presencehub", "exp": time.Now().Add(time.Hour).Unix()})
		tok.Header["kid"] = k.kid
		s, err := tok.SignedString(k.priv)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	accepted := func(tok string) error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		cl, err := sipclient.Dial(ctx, "ws://"+h.addr+"/ws", sipclient.Options{Token: tok})
		if err == nil {
			cl.Close()
		}
		return err
	}
	old := published[0]
	if err := accepted(token(old, issuer)); err != nil {
		t.Fatalf("the provider's token: %v", err)
	}
	next := newKey("2026-12")
	mu.Lock()
	published = []key{next} // rotation: the new key in, the old one withdrawn
	mu.Unlock()
	time.Sleep(60 * time.Millisecond) // the unknown-kid interval since the first fetch
	if err := accepted(token(next, issuer)); err != nil {
		t.Fatalf("a token of the rotated key: %v", err)
	}
	for name, tok := range map[string]string{
		"the withdrawn key":        token(old, issuer),
		"another issuer, same key": token(next, "https://evil.example.com/"),
	} {
		if err := accepted(tok); err == nil || !strings.Contains(err.Error(), "401") {
			t.Errorf("%s: %v, want a 401 refusal", name, err)
		}
	}
}

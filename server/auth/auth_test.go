package auth_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/presencehub/presencehub/server/auth"
)

var secret = []byte("0123456789abcdef0123456789abcdef")

func verifier(t testing.TB, cfg auth.Config) *auth.Verifier {
	t.Helper()
	if cfg.Domain == "" {
		cfg.Domain = "hub.test"
	}
	v, err := auth.NewVerifier(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func sign(t testing.TB, m jwt.SigningMethod, key any, c jwt.MapClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(m, c).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestVerify_Refusals(t *testing.T) {
	v := verifier(t, auth.Config{Secret: secret, Issuer: "pbx", Audience: "hub"})
	now := time.Now()
	ok := func(extra jwt.MapClaims) jwt.MapClaims {
		c := jwt.MapClaims{"sub": "1001", "exp": now.Add(time.Hour).Unix(), "iss": "pbx", "aud": "hub"}
		for k, val := range extra {
			if val == nil {
				delete(c, k)
			} else {
				c[k] = val
			}
		}
		return c
	}
	tests := []struct {
		name  string
		token string
		want  error
	}{
		{"empty", "", auth.ErrNoToken},
		{"garbage", "not-a-jwt", auth.ErrMalformed},
		{"wrong secret", sign(t, jwt.SigningMethodHS256, []byte("ffffffffffffffffffffffffffffffff"), ok(nil)), auth.ErrSignature},
		{"alg none", sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, ok(nil)), auth.ErrSignature},
		{"HS512 (not the configured method)", sign(t, jwt.SigningMethodHS512, secret, ok(nil)), auth.ErrSignature},
		{"expired", sign(t, jwt.SigningMethodHS256, secret, ok(jwt.MapClaims{"exp": now.Add(-time.Hour).Unix()})), auth.ErrExpired},
		{"no exp", sign(t, jwt.SigningMethodHS256, secret, ok(jwt.MapClaims{"exp": nil})), auth.ErrClaims},
		{"nbf in the future", sign(t, jwt.SigningMethodHS256, secret, ok(jwt.MapClaims{"nbf": now.Add(time.Hour).Unix()})), auth.ErrNotYet},
		{"wrong iss", sign(t, jwt.SigningMethodHS256, secret, ok(jwt.MapClaims{"iss": "x"})), auth.ErrClaims},
		{"wrong aud", sign(t, jwt.SigningMethodHS256, secret, ok(jwt.MapClaims{"aud": "x"})), auth.ErrClaims},
		{"no sub", sign(t, jwt.SigningMethodHS256, secret, ok(jwt.MapClaims{"sub": nil})), auth.ErrClaims},
		{"sub that is no SIP user", sign(t, jwt.SigningMethodHS256, secret, ok(jwt.MapClaims{"sub": "a@b"})), auth.ErrClaims},
		{"valid", sign(t, jwt.SigningMethodHS256, secret, ok(nil)), nil},
		// exp is exact (the connection's deadline is the same instant); the
		// leeway is for nbf and iat only.
		{"exp passed, within the leeway", sign(t, jwt.SigningMethodHS256, secret, ok(jwt.MapClaims{"exp": now.Add(-10 * time.Second).Unix()})), auth.ErrExpired},
		{"nbf within the leeway", sign(t, jwt.SigningMethodHS256, secret, ok(jwt.MapClaims{"nbf": now.Add(10 * time.Second).Unix()})), nil},
		{"exp as a JSON string", sign(t, jwt.SigningMethodHS256, secret, ok(jwt.MapClaims{"exp": fmt.Sprint(now.Add(time.Hour).Unix())})), auth.ErrMalformed},
		{"nbf as a JSON string", sign(t, jwt.SigningMethodHS256, secret, ok(jwt.MapClaims{"nbf": fmt.Sprint(now.Unix())})), auth.ErrMalformed},
		{"iat as an object", sign(t, jwt.SigningMethodHS256, secret, ok(jwt.MapClaims{"iat": map[string]int{"n": 1}})), auth.ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := v.Verify(tt.token)
			if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Fatalf("Verify: %v, want %v", err, tt.want)
			}
		})
	}
}

func TestVerify_PublicKeys(t *testing.T) {
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	_, edPriv, _ := ed25519.GenerateKey(rand.Reader)
	pemOf := func(pub any) []byte {
		der, err := x509.MarshalPKIXPublicKey(pub)
		if err != nil {
			t.Fatal(err)
		}
		return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	}
	claims := jwt.MapClaims{"sub": "1001", "exp": time.Now().Add(time.Hour).Unix()}
	tests := []struct {
		name string
		pem  []byte
		tok  string
		ok   bool
	}{
		{"RS256", pemOf(&rsaKey.PublicKey), sign(t, jwt.SigningMethodRS256, rsaKey, claims), true},
		{"EdDSA", pemOf(edPriv.Public()), sign(t, jwt.SigningMethodEdDSA, edPriv, claims), true},
		// Algorithm confusion: an HS256 token "signed" with the public key bytes.
		{"HS256 with the RSA public key as secret", pemOf(&rsaKey.PublicKey), sign(t, jwt.SigningMethodHS256, pemOf(&rsaKey.PublicKey), claims), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := verifier(t, auth.Config{PublicKeyPEM: tt.pem})
			_, err := v.Verify(tt.tok)
			if (err == nil) != tt.ok {
				t.Fatalf("Verify: %v, want ok=%v", err, tt.ok)
			}
		})
	}
}

func TestIdentity_PublishAndSubscribeClaims(t *testing.T) {
	v := verifier(t, auth.Config{Secret: secret})
	exp := time.Now().Add(time.Hour).Unix()
	tests := []struct {
		name             string
		claims           jwt.MapClaims
		user, domain     string
		canPub, canWatch bool
	}{
		{"defaults: own AOR", jwt.MapClaims{"sub": "1001"}, "1001", "hub.test", true, true},
		{"defaults: others watchable, not publishable", jwt.MapClaims{"sub": "1001"}, "1002", "hub.test", false, true},
		{"PBX publishes everyone", jwt.MapClaims{"sub": "pbx", "publish": []string{"*"}}, "1002", "hub.test", true, true},
		{"lobby limited", jwt.MapClaims{"sub": "lobby", "subscribe": []string{"100"}}, "101", "hub.test", false, false},
		{"lobby allowed", jwt.MapClaims{"sub": "lobby", "subscribe": []string{"100"}}, "100", "hub.test", false, true},
		{"other domain", jwt.MapClaims{"sub": "1001", "publish": []string{"*"}}, "1001", "example.org", false, false},
		// The default publish list is the sub itself, literally: a sub spelt
		// "*" is no wildcard.
		{"sub * publishes only its own AOR", jwt.MapClaims{"sub": "*"}, "1002", "hub.test", false, true},
		{"sub * and its own AOR", jwt.MapClaims{"sub": "*"}, "*", "hub.test", true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.claims["exp"] = exp
			id, err := v.Verify(sign(t, jwt.SigningMethodHS256, secret, tt.claims))
			if err != nil {
				t.Fatal(err)
			}
			if got := id.CanPublish(tt.user, tt.domain); got != tt.canPub {
				t.Errorf("CanPublish = %v", got)
			}
			if got := id.CanSubscribe(tt.user, tt.domain); got != tt.canWatch {
				t.Errorf("CanSubscribe = %v", got)
			}
		})
	}
}

func TestNewVerifier_Config(t *testing.T) {
	for _, tt := range []struct {
		name string
		cfg  auth.Config
	}{
		{"no key", auth.Config{Domain: "d"}},
		{"short secret", auth.Config{Domain: "d", Secret: []byte("short")}},
		{"both keys", auth.Config{Domain: "d", Secret: secret, PublicKeyPEM: []byte("x")}},
		{"bad PEM", auth.Config{Domain: "d", PublicKeyPEM: []byte("not pem")}},
		{"no domain", auth.Config{Secret: secret}},
	} {
		if _, err := auth.NewVerifier(tt.cfg); err == nil {
			t.Errorf("%s: accepted", tt.name)
		}
	}
}

// FuzzVerify: no token, however malformed, panics the verifier or passes it
// without the key.
func FuzzVerify(f *testing.F) {
	v := verifier(f, auth.Config{Secret: secret})
	good := sign(f, jwt.SigningMethodHS256, secret, jwt.MapClaims{"sub": "1001", "exp": time.Now().Add(time.Hour).Unix()})
	f.Add(good)
	f.Add(good[:len(good)-3])
	f.Add("eyJhbGciOiJub25lIn0.eyJzdWIiOiIxMDAxIn0.")
	f.Add("a.b.c")
	// Time claims spelt as JSON strings (refused as malformed).
	f.Add(sign(f, jwt.SigningMethodHS256, secret, jwt.MapClaims{"sub": "1001", "exp": fmt.Sprint(time.Now().Add(time.Hour).Unix())}))
	f.Add(sign(f, jwt.SigningMethodHS256, secret, jwt.MapClaims{"sub": "*", "exp": time.Now().Add(time.Hour).Unix(), "iat": "1"}))
	f.Fuzz(func(t *testing.T, tok string) {
		id, err := v.Verify(tok)
		if err == nil && (tok != good || id.Sub != "1001") {
			// Only the token signed with the secret verifies (strict base64:
			// no second spelling of the same signature).
			t.Fatalf("forged token accepted: %q → %+v", tok, id)
		}
	})
}

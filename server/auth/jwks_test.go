package auth_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/golang-jwt/jwt/v5"
	"github.com/presencehub/presencehub/server/auth"
)

// idp is an identity provider's JWKS endpoint on 127.0.0.1: its key set can
// be rotated and it can be taken down (503).
type idp struct {
	srv     *httptest.Server
	mu      sync.Mutex
	keys    []jwkset.JWKMarshal
	down    atomic.Bool
	fetches atomic.Int32
}

func newIDP(t testing.TB, keys ...jwkset.JWKMarshal) *idp {
	p := &idp{keys: keys}
	p.srv = httptest.NewServer(http.HandlerFunc(p.serve))
	t.Cleanup(p.srv.Close)
	return p
}

func (p *idp) serve(w http.ResponseWriter, _ *http.Request) {
	p.fetches.Add(1)
	if p.down.Load() {
		http.Error(w, "down", http.StatusServiceUnavailable)
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(jwkset.JWKSMarshal{Keys: p.keys})
}

func (p *idp) set(keys ...jwkset.JWKMarshal) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.keys = keys
}

func (p *idp) url() string { return p.srv.URL + "/certs" }

// signingKey is a private key with its kid and its public JWK.
type signingKey struct {
	kid  string
	priv crypto.Signer
	jwk  jwkset.JWKMarshal
}

func newKey(t testing.TB, kid string, priv crypto.Signer, alg jwkset.ALG, use jwkset.USE) signingKey {
	t.Helper()
	j, err := jwkset.NewJWKFromKey(priv.Public(), jwkset.JWKOptions{Metadata: jwkset.JWKMetadataOptions{KID: kid, ALG: alg, USE: use}})
	if err != nil {
		t.Fatal(err)
	}
	return signingKey{kid: kid, priv: priv, jwk: j.Marshal()}
}

func rsaKey(t testing.TB) *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func ecKey(t testing.TB, c elliptic.Curve) *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(c, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func (k signingKey) token(t testing.TB, m jwt.SigningMethod, iss string) string {
	t.Helper()
	tok := jwt.NewWithClaims(m, jwt.MapClaims{"sub": "1001", "iss": iss, "exp": time.Now().Add(time.Hour).Unix()})
	if k.kid != "" {
		tok.Header["kid"] = k.kid
	}
	s, err := tok.SignedString(k.priv)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func jwksVerifier(t *testing.T, cfg auth.Config) *auth.Verifier {
	t.Helper()
	cfg.Domain = "hub.test"
	if cfg.JWKSOptions.UnknownKIDInterval == 0 {
		cfg.JWKSOptions.UnknownKIDInterval = 50 * time.Millisecond
	}
	if cfg.JWKSOptions.LookupTimeout == 0 {
		cfg.JWKSOptions.LookupTimeout = 2 * time.Second
	}
	v, err := auth.NewVerifier(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(v.Close)
	return v
}

// eventually retries f until it succeeds or 5 s pass.
func eventually(t *testing.T, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestJWKS_KeysOfTheSetVerifyAndOthersAreRefused(t *testing.T) {
	rs := newKey(t, "rs", rsaKey(t), jwkset.AlgRS256, jwkset.UseSig)
	es := newKey(t, "es", ecKey(t, elliptic.P256()), jwkset.AlgES256, jwkset.UseSig)
	_, edPriv, _ := ed25519.GenerateKey(rand.Reader)
	ed := newKey(t, "ed", edPriv, "", "")
	noAlg := newKey(t, "noalg", rsaKey(t), "", "")
	enc := newKey(t, "enc", rsaKey(t), "", jwkset.UseEnc)
	p := newIDP(t, rs.jwk, es.jwk, ed.jwk, noAlg.jwk, enc.jwk)
	v := jwksVerifier(t, auth.Config{JWKS: []auth.JWKS{{URL: p.url()}}})

	stranger := newKey(t, "rs", rsaKey(t), jwkset.AlgRS256, jwkset.UseSig) // same kid, other key
	tests := []struct {
		name string
		tok  string
		ok   bool
	}{
		{"RS256 key", rs.token(t, jwt.SigningMethodRS256, "any"), true},
		{"ES256 key", es.token(t, jwt.SigningMethodES256, "any"), true},
		{"Ed25519 key without alg", ed.token(t, jwt.SigningMethodEdDSA, "any"), true},
		{"RSA key without alg, RS384", noAlg.token(t, jwt.SigningMethodRS384, "any"), true},
		{"token without kid: the set's key that fits", signingKey{priv: es.priv}.token(t, jwt.SigningMethodES256, "any"), true},
		{"wrong alg for the key: PS256 with an RS256 key", rs.token(t, jwt.SigningMethodPS256, "any"), false},
		{"wrong alg for the key: RS512 with an RS256 key", rs.token(t, jwt.SigningMethodRS512, "any"), false},
		{"wrong curve: ES384 header on a P-256 key", newKey(t, "es", ecKey(t, elliptic.P384()), "", "").token(t, jwt.SigningMethodES384, "any"), false},
		{"encryption key (use enc)", enc.token(t, jwt.SigningMethodRS256, "any"), false},
		{"same kid, another key", stranger.token(t, jwt.SigningMethodRS256, "any"), false},
		{"HS256 without a secret", sign(t, jwt.SigningMethodHS256, secret, jwt.MapClaims{"sub": "1", "exp": time.Now().Add(time.Hour).Unix()}), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, err := v.Verify(tt.tok)
			if (err == nil) != tt.ok {
				t.Fatalf("Verify: %v, want ok=%v", err, tt.ok)
			}
			if err == nil && id.Sub != "1001" {
				t.Fatalf("sub %q", id.Sub)
			}
			if err != nil && !errors.Is(err, auth.ErrSignature) {
				t.Fatalf("error %v is not ErrSignature", err)
			}
		})
	}
}

func TestJWKS_RotationIsFetchedOnUnknownKid(t *testing.T) {
	old := newKey(t, "2026-11", rsaKey(t), jwkset.AlgRS256, jwkset.UseSig)
	next := newKey(t, "2026-12", rsaKey(t), jwkset.AlgRS256, jwkset.UseSig)
	p := newIDP(t, old.jwk)
	v := jwksVerifier(t, auth.Config{JWKS: []auth.JWKS{{URL: p.url()}}, JWKSOptions: auth.JWKSOptions{Refresh: time.Hour}})
	if _, err := v.Verify(old.token(t, jwt.SigningMethodRS256, "")); err != nil {
		t.Fatal(err)
	}
	p.set(next.jwk) // the provider rotates: the old key is withdrawn
	if _, err := v.Verify(next.token(t, jwt.SigningMethodRS256, "")); err != nil {
		t.Fatalf("new kid after rotation: %v", err)
	}
	if _, err := v.Verify(old.token(t, jwt.SigningMethodRS256, "")); err == nil {
		t.Fatal("withdrawn key still verifies")
	}
}

func TestJWKS_UnknownKidRefetchesAreRateLimited(t *testing.T) {
	k := newKey(t, "k1", rsaKey(t), jwkset.AlgRS256, jwkset.UseSig)
	p := newIDP(t, k.jwk)
	v := jwksVerifier(t, auth.Config{JWKS: []auth.JWKS{{URL: p.url()}}, JWKSOptions: auth.JWKSOptions{Refresh: time.Hour, UnknownKIDInterval: time.Hour}})
	start := p.fetches.Load()
	unknown := newKey(t, "nobody", rsaKey(t), jwkset.AlgRS256, jwkset.UseSig)
	for i := range 20 {
		t0 := time.Now()
		if _, err := v.Verify(unknown.token(t, jwt.SigningMethodRS256, "")); err == nil {
			t.Fatal("unknown kid accepted")
		}
		if d := time.Since(t0); i > 0 && d > time.Second {
			t.Fatalf("lookup %d waited %v for the rate limiter (the lookup deadline is the bound)", i, d)
		}
	}
	if n := p.fetches.Load() - start; n != 1 {
		t.Fatalf("20 unknown kids caused %d fetches, want 1", n)
	}
	if _, err := v.Verify(k.token(t, jwt.SigningMethodRS256, "")); err != nil {
		t.Fatalf("known kid after the flood: %v", err)
	}
}

func TestJWKS_ProviderDownAtStartThenUp(t *testing.T) {
	k := newKey(t, "k1", rsaKey(t), jwkset.AlgRS256, jwkset.UseSig)
	// Reserve an address, then close it: the provider is not listening.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	v := jwksVerifier(t, auth.Config{JWKS: []auth.JWKS{{URL: "http://" + addr + "/certs"}}, JWKSOptions: auth.JWKSOptions{Refresh: time.Hour}})
	tok := k.token(t, jwt.SigningMethodRS256, "")
	if _, err := v.Verify(tok); !errors.Is(err, auth.ErrSignature) {
		t.Fatalf("while the provider is down: %v", err)
	}
	// The provider comes up.
	ln, err = net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("address %s taken meanwhile: %v", addr, err)
	}
	p := &idp{keys: []jwkset.JWKMarshal{k.jwk}}
	srv := &httptest.Server{Listener: ln, Config: &http.Server{Handler: http.HandlerFunc(p.serve)}}
	srv.Start()
	defer srv.Close()
	eventually(t, "token after the provider came up", func() error { _, err := v.Verify(tok); return err })
}

func TestJWKS_ProviderDownLaterKeepsTheKeys(t *testing.T) {
	k := newKey(t, "k1", rsaKey(t), jwkset.AlgRS256, jwkset.UseSig)
	p := newIDP(t, k.jwk)
	v := jwksVerifier(t, auth.Config{JWKS: []auth.JWKS{{URL: p.url()}}, JWKSOptions: auth.JWKSOptions{Refresh: 20 * time.Millisecond}})
	p.down.Store(true)
	before := p.fetches.Load()
	eventually(t, "scheduled refreshes while down", func() error {
		if p.fetches.Load() < before+3 {
			return errors.New("no refresh yet")
		}
		return nil
	})
	if _, err := v.Verify(k.token(t, jwt.SigningMethodRS256, "")); err != nil {
		t.Fatalf("known key while the provider is down: %v", err)
	}
	unknown := newKey(t, "k2", rsaKey(t), jwkset.AlgRS256, jwkset.UseSig)
	if _, err := v.Verify(unknown.token(t, jwt.SigningMethodRS256, "")); err == nil {
		t.Fatal("unknown kid accepted while the provider is down")
	}
	// Back up with a rotated set: the scheduled refresh picks it up.
	p.set(unknown.jwk)
	p.down.Store(false)
	eventually(t, "rotated key after the provider came back", func() error { _, err := v.Verify(unknown.token(t, jwt.SigningMethodRS256, "")); return err })
}

func TestJWKS_IssuerBinding(t *testing.T) {
	a := newKey(t, "a", rsaKey(t), jwkset.AlgRS256, jwkset.UseSig)
	b := newKey(t, "b", ecKey(t, elliptic.P256()), jwkset.AlgES256, jwkset.UseSig)
	pa, pb := newIDP(t, a.jwk), newIDP(t, b.jwk)
	v := jwksVerifier(t, auth.Config{Secret: secret, Issuer: "hub", JWKS: []auth.JWKS{
		{Issuer: "https://idp-a.example.com/realms/acme", URL: pa.url()},
		{Issuer: "https://idp-b.example.com/", URL: pb.url()},
	}})
	hs := func(iss string) string {
		return sign(t, jwt.SigningMethodHS256, secret, jwt.MapClaims{"sub": "1001", "iss": iss, "exp": time.Now().Add(time.Hour).Unix()})
	}
	tests := []struct {
		name string
		tok  string
		want error
	}{
		{"issuer A with A's key", a.token(t, jwt.SigningMethodRS256, "https://idp-a.example.com/realms/acme"), nil},
		{"issuer B with B's key", b.token(t, jwt.SigningMethodES256, "https://idp-b.example.com/"), nil},
		{"issuer A with B's key", b.token(t, jwt.SigningMethodES256, "https://idp-a.example.com/realms/acme"), auth.ErrSignature},
		{"an unbound issuer with A's key", a.token(t, jwt.SigningMethodRS256, "https://evil.example.com/"), auth.ErrSignature},
		{"static secret beside the sets", hs("hub"), nil},
		{"static secret, another issuer", hs("someone"), auth.ErrClaims},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := v.Verify(tt.tok)
			if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Fatalf("Verify: %v, want %v", err, tt.want)
			}
		})
	}
}

func TestParseJWKS(t *testing.T) {
	tests := []struct {
		in      string
		want    auth.JWKS
		wantErr bool
	}{
		{"https://kc.example.com/realms/acme/protocol/openid-connect/certs", auth.JWKS{URL: "https://kc.example.com/realms/acme/protocol/openid-connect/certs"}, false},
		{"https://kc.example.com/realms/acme=https://kc.example.com/realms/acme/protocol/openid-connect/certs",
			auth.JWKS{Issuer: "https://kc.example.com/realms/acme", URL: "https://kc.example.com/realms/acme/protocol/openid-connect/certs"}, false},
		{"https://idp.example.com/keys?tenant=a", auth.JWKS{URL: "https://idp.example.com/keys?tenant=a"}, false},
		{"acme=http://127.0.0.1:9000/jwks", auth.JWKS{Issuer: "acme", URL: "http://127.0.0.1:9000/jwks"}, false},
		{"idp.example.com/certs", auth.JWKS{}, true},
		{"acme=ftp://x", auth.JWKS{}, true},
	}
	for _, tt := range tests {
		got, err := auth.ParseJWKS(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("ParseJWKS(%q) = %+v, %v", tt.in, got, err)
		}
	}
}

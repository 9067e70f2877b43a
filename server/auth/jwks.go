package auth

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/time/rate"
)

// JWKS is an identity provider's JSON Web Key Set (RFC 7517 §5), fetched
// from URL. With Issuer set, the set verifies only tokens whose iss is
// Issuer; without, it verifies tokens of any issuer (Config.Issuer, when set,
// still applies).
type JWKS struct {
	Issuer string
	URL    string
}

// ParseJWKS reads an entry of the form "issuer=url" or "url": the issuer is
// everything before the first "=http://" or "=https://".
func ParseJWKS(s string) (JWKS, error) {
	s = strings.TrimSpace(s)
	var j JWKS
	if i := strings.Index(s, "=http"); i > 0 && (strings.HasPrefix(s[i+1:], "http://") || strings.HasPrefix(s[i+1:], "https://")) {
		j.Issuer, j.URL = s[:i], s[i+1:]
	} else {
		j.URL = s
	}
	if !strings.HasPrefix(j.URL, "http://") && !strings.HasPrefix(j.URL, "https://") {
		return JWKS{}, fmt.Errorf("JWKS %q: want a URL like https://idp.example.com/certs, or issuer=URL", s)
	}
	return j, nil
}

// JWKSOptions say how JWK Sets are kept fresh. Zero values take the defaults.
type JWKSOptions struct {
	// Refresh is the period of scheduled re-fetches; default 15 min. The
	// keys of the last good fetch stay in use while the provider is down.
	Refresh time.Duration
	// UnknownKIDInterval is the shortest time between two re-fetches caused by
	// tokens naming a kid the set does not hold (a rotated key); default 30 s.
	// A lookup that would have to wait longer is refused at once.
	UnknownKIDInterval time.Duration
	// LookupTimeout bounds one key lookup, a re-fetch included, and each
	// HTTP fetch; default 5 s.
	LookupTimeout time.Duration
	// Client fetches the sets; default a client with LookupTimeout.
	Client *http.Client
	// Logger gets failed fetches; default slog.Default().
	Logger *slog.Logger
}

func (o JWKSOptions) withDefaults() JWKSOptions {
	if o.Refresh <= 0 {
		o.Refresh = 15 * time.Minute
	}
	if o.UnknownKIDInterval <= 0 {
		o.UnknownKIDInterval = 30 * time.Second
	}
	if o.LookupTimeout <= 0 {
		o.LookupTimeout = 5 * time.Second
	}
	if o.Client == nil {
		o.Client = &http.Client{Timeout: o.LookupTimeout}
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o
}

// jwksMethods are the algorithms a JWK Set key may verify (never HMAC: a
// published set holds no shared secrets).
var jwksMethods = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}

type keySet struct {
	JWKS
	kf keyfunc.Keyfunc
}

// source records which key verified a token.
type source struct {
	issuer string // the bound issuer of the JWK Set; "" for a static key or an unbound set
}

// startJWKS fetches every set once (a provider that is down does not stop
// the hub: its keys arrive with a later fetch) and starts their refreshing,
// which Close ends.
func (v *Verifier) startJWKS() error {
	o := v.cfg.JWKSOptions
	ctx, stop := context.WithCancel(context.Background())
	v.stop = stop
	for _, j := range v.cfg.JWKS {
		if _, err := ParseJWKS(j.URL); err != nil {
			stop()
			return fmt.Errorf("auth: %w", err)
		}
		kf, err := keyfunc.NewDefaultOverrideCtx(ctx, []string{j.URL}, keyfunc.Override{
			Client:           o.Client,
			HTTPTimeout:      o.LookupTimeout,
			RateLimitWaitMax: o.LookupTimeout,
			RefreshInterval:  o.Refresh,
			// Burst 1: one re-fetch, then one per interval at most.
			RefreshUnknownKID: rate.NewLimiter(rate.Every(o.UnknownKIDInterval), 1),
			RefreshErrorHandlerFunc: func(u string) func(context.Context, error) {
				return func(ctx context.Context, err error) {
					if ctx.Err() == nil || !errors.Is(err, context.Canceled) {
						o.Logger.Warn("JWKS fetch failed; keeping the keys of the last good fetch", "url", u, "issuer", j.Issuer, "err", err)
					}
				}
			},
		})
		if err != nil {
			stop()
			return fmt.Errorf("auth: JWKS %s: %w", j.URL, err)
		}
		v.sets = append(v.sets, &keySet{JWKS: j, kf: kf})
	}
	return nil
}

// Close stops refreshing the JWK Sets. The Verifier still verifies with the
// keys it holds.
func (v *Verifier) Close() { v.stop() }

// key picks the key for t: the HS256 secret, a key of the JWK Sets that may
// verify tokens of c's issuer (by kid, re-fetching the set once per
// UnknownKIDInterval for a kid it does not hold), or the static public key.
func (v *Verifier) key(ctx context.Context, t *jwt.Token, c *Claims, from *source) (any, error) {
	alg := t.Method.Alg()
	if alg == "HS256" {
		if v.secret == nil {
			return nil, errors.New("no HS256 secret configured")
		}
		return v.secret, nil
	}
	kid, _ := t.Header["kid"].(string)
	var errs []error
	for _, set := range v.setsFor(c.Issuer) {
		key, err := set.key(ctx, alg, kid)
		if err == nil {
			from.issuer = set.Issuer
			return key, nil
		}
		errs = append(errs, err)
	}
	if v.pub != nil && alg == v.pubAlg {
		return v.pub, nil
	}
	if len(errs) == 0 {
		return nil, fmt.Errorf("no key for alg %s and issuer %q", alg, c.Issuer)
	}
	return nil, errors.Join(errs...)
}

// setsFor returns the sets bound to iss, or, when none is, the unbound ones.
func (v *Verifier) setsFor(iss string) []*keySet {
	var bound, unbound []*keySet
	for _, s := range v.sets {
		switch {
		case s.Issuer == "":
			unbound = append(unbound, s)
		case s.Issuer == iss:
			bound = append(bound, s)
		}
	}
	if len(bound) > 0 {
		return bound
	}
	return unbound
}

func (s *keySet) key(ctx context.Context, alg, kid string) (any, error) {
	store := s.kf.Storage()
	if kid != "" {
		jwk, err := store.KeyRead(ctx, kid)
		if err != nil {
			return nil, fmt.Errorf("JWKS %s: kid %q: %w", s.URL, kid, err)
		}
		return signingKey(jwk, alg)
	}
	// No kid: the one key of the set that fits alg (RFC 7515 §4.1.4 leaves
	// kid optional).
	all, err := store.KeyReadAll(ctx)
	if err != nil {
		return nil, fmt.Errorf("JWKS %s: %w", s.URL, err)
	}
	var keys jwt.VerificationKeySet
	for _, jwk := range all {
		if k, err := signingKey(jwk, alg); err == nil {
			keys.Keys = append(keys.Keys, k)
		}
	}
	if len(keys.Keys) == 0 {
		return nil, fmt.Errorf("JWKS %s: no key for alg %s", s.URL, alg)
	}
	return keys, nil
}

// signingKey returns jwk's public key if it may verify a token signed with
// alg: a signature key (use "sig" or absent; key_ops, when present, has
// "verify"), whose "alg", when present, is alg, and whose type and curve
// fit alg.
func signingKey(jwk jwkset.JWK, alg string) (crypto.PublicKey, error) {
	m := jwk.Marshal()
	if m.USE != "" && m.USE != jwkset.UseSig {
		return nil, fmt.Errorf("key %q has use %q, not sig", m.KID, m.USE)
	}
	if len(m.KEYOPS) > 0 && !slices.Contains(m.KEYOPS, jwkset.KeyOpsVerify) {
		return nil, fmt.Errorf("key %q: key_ops %v lack verify", m.KID, m.KEYOPS)
	}
	if m.ALG != "" && string(m.ALG) != alg {
		return nil, fmt.Errorf("key %q is for %s, the token is %s", m.KID, m.ALG, alg)
	}
	key := jwk.Key()
	if pk, ok := key.(interface{ Public() crypto.PublicKey }); ok {
		key = pk.Public()
	}
	fits := false
	switch k := key.(type) {
	case *rsa.PublicKey:
		fits = strings.HasPrefix(alg, "RS") || strings.HasPrefix(alg, "PS")
	case *ecdsa.PublicKey:
		fits = alg == "ES256" && k.Curve == elliptic.P256() || alg == "ES384" && k.Curve == elliptic.P384() || alg == "ES512" && k.Curve == elliptic.P521()
	case ed25519.PublicKey:
		fits = alg == "EdDSA"
	}
	if !fits {
		return nil, fmt.Errorf("key %q (%s) cannot verify %s", m.KID, m.KTY, alg)
	}
	return key, nil
}

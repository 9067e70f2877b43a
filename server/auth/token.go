package auth

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/presencehub/presencehub/internal/siprule"
)

// Config says how tokens are verified: with a static key (at most one of
// Secret and PublicKeyPEM), with the JWK Sets of identity providers (JWKS),
// or both. At least one key source is required.
type Config struct {
	Secret       []byte // HS256 shared secret
	PublicKeyPEM []byte // PEM public key: RSA (RS256), ECDSA P-256 (ES256) or Ed25519 (EdDSA)
	// Issuer is the required iss of tokens verified by a static key or by a
	// JWK Set not bound to an issuer; a token verified by a bound JWK Set
	// carries that set's issuer.
	Issuer   string
	Audience string        // required aud when set
	Domain   string        // SIP domain of every AOR
	Leeway   time.Duration // clock skew allowed for nbf/iat; default 30s (exp is exact)
	// JWKS are identity providers' key sets; see JWKSOptions for refreshing.
	JWKS        []JWKS
	JWKSOptions JWKSOptions
}

// Claims are the token claims the hub understands.
type Claims struct {
	jwt.RegisteredClaims
	Publish   []string `json:"publish,omitempty"`
	Subscribe []string `json:"subscribe,omitempty"`
	Admin     bool     `json:"admin,omitempty"`
	// Domain is informational for clients (the console builds AORs from it).
	Domain string `json:"domain,omitempty"`
}

// UnmarshalJSON decodes the claims, refusing a time claim (exp, nbf, iat)
// that is not a JSON number: RFC 7519 §2 makes NumericDate a number, and
// the JWT library would also accept a string holding one.
func (c *Claims) UnmarshalJSON(b []byte) error {
	var times struct {
		Exp json.RawMessage `json:"exp"`
		Nbf json.RawMessage `json:"nbf"`
		Iat json.RawMessage `json:"iat"`
	}
	if err := json.Unmarshal(b, &times); err != nil {
		return err
	}
	for _, t := range []struct {
		name string
		raw  json.RawMessage
	}{{"exp", times.Exp}, {"iat", times.Iat}, {"nbf", times.Nbf}} {
		if len(t.raw) > 0 && string(t.raw) != "null" && (t.raw[0] != '-' && (t.raw[0] < '0' || t.raw[0] > '9')) {
			return fmt.Errorf("%s is %s, not a number (RFC 7519 NumericDate)", t.name, jsonKind(t.raw[0]))
		}
	}
	type plain Claims // without this method
	return json.Unmarshal(b, (*plain)(c))
}

func jsonKind(first byte) string {
	switch first {
	case '"':
		return "a string"
	case '{':
		return "an object"
	case '[':
		return "an array"
	}
	return "not a number"
}

// Identity is a verified token.
type Identity struct {
	Sub       string
	AOR       string // sip:<sub>@<domain>
	Expires   time.Time
	Admin     bool
	publish   []string
	subscribe []string
	domain    string
	// publishSelf is the default when the token has no publish claim: the
	// user may publish and register its own AOR only. It is kept apart from
	// the publish list because "*" in a list means every user, and a sub may
	// itself be spelt "*".
	publishSelf bool
}

// Reasons a token is refused; wrapped by Verify so callers can count them.
var (
	ErrNoToken   = errors.New("no token")
	ErrMalformed = errors.New("malformed token")
	ErrSignature = errors.New("bad signature or algorithm")
	ErrExpired   = errors.New("token expired")
	ErrNotYet    = errors.New("token not valid yet")
	ErrClaims    = errors.New("invalid claims")
)

// Verifier verifies tokens with its static key and its identity providers'
// JWK Sets. Close ends the JWK Sets' refreshing.
type Verifier struct {
	secret  []byte           // HS256
	pub     crypto.PublicKey // static PEM key
	pubAlg  string
	sets    []*keySet
	methods []string
	parser  *jwt.Parser
	cfg     Config
	stop    context.CancelFunc
}

// NewVerifier returns a Verifier for cfg.
func NewVerifier(cfg Config) (*Verifier, error) {
	if cfg.Domain == "" {
		return nil, errors.New("auth: domain is required")
	}
	if cfg.Leeway == 0 {
		cfg.Leeway = 30 * time.Second
	}
	cfg.JWKSOptions = cfg.JWKSOptions.withDefaults()
	v := &Verifier{cfg: cfg, stop: func() {}}
	switch {
	case len(cfg.Secret) > 0 && len(cfg.PublicKeyPEM) > 0:
		return nil, errors.New("auth: configure either a secret or a public key, not both")
	case len(cfg.Secret) > 0:
		if len(cfg.Secret) < 32 {
			return nil, errors.New("auth: HS256 secret must be at least 32 bytes")
		}
		v.secret, v.methods = cfg.Secret, []string{"HS256"}
	case len(cfg.PublicKeyPEM) > 0:
		key, method, err := parsePublicKey(cfg.PublicKeyPEM)
		if err != nil {
			return nil, fmt.Errorf("auth: public key: %w", err)
		}
		v.pub, v.pubAlg, v.methods = key, method, []string{method}
	case len(cfg.JWKS) == 0:
		return nil, errors.New("auth: no key configured")
	}
	if len(cfg.JWKS) > 0 {
		if err := v.startJWKS(); err != nil {
			return nil, err
		}
		for _, m := range jwksMethods {
			if !slices.Contains(v.methods, m) {
				v.methods = append(v.methods, m)
			}
		}
	}
	opts := []jwt.ParserOption{
		jwt.WithValidMethods(v.methods),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(cfg.Leeway),
		jwt.WithStrictDecoding(), // one spelling per token: no padding or trailing-bit variants
	}
	if cfg.Audience != "" {
		opts = append(opts, jwt.WithAudience(cfg.Audience))
	}
	v.parser = jwt.NewParser(opts...)
	return v, nil
}

func parsePublicKey(data []byte) (crypto.PublicKey, string, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, "", errors.New("no PEM block")
	}
	pub, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return nil, "", err
	}
	switch k := pub.(type) {
	case *rsa.PublicKey:
		return k, "RS256", nil
	case *ecdsa.PublicKey:
		return k, "ES256", nil
	case ed25519.PublicKey:
		return k, "EdDSA", nil
	}
	return nil, "", fmt.Errorf("unsupported key type %T", pub)
}

// Verify checks a compact JWT and returns the identity it proves.
func (v *Verifier) Verify(token string) (*Identity, error) {
	if token == "" {
		return nil, ErrNoToken
	}
	// Compact JWS is base64url and dots only (RFC 7515 §7.1); the base64
	// decoder would skip a CR/LF, giving one token several spellings.
	if strings.Trim(token, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.") != "" {
		return nil, fmt.Errorf("%w: characters outside base64url", ErrMalformed)
	}
	var c Claims
	var from source
	ctx := context.Background()
	if len(v.sets) > 0 { // a key lookup may fetch: bounded
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, v.cfg.JWKSOptions.LookupTimeout)
		defer cancel()
	}
	_, err := v.parser.ParseWithClaims(token, &c, func(t *jwt.Token) (any, error) { return v.key(ctx, t, &c, &from) })
	if err != nil {
		switch {
		case errors.Is(err, jwt.ErrTokenMalformed):
			return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
		case errors.Is(err, jwt.ErrTokenSignatureInvalid), errors.Is(err, jwt.ErrTokenUnverifiable):
			return nil, fmt.Errorf("%w: %v", ErrSignature, err)
		case errors.Is(err, jwt.ErrTokenExpired):
			return nil, fmt.Errorf("%w: %v", ErrExpired, err)
		case errors.Is(err, jwt.ErrTokenNotValidYet), errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
			return nil, fmt.Errorf("%w: %v", ErrNotYet, err)
		}
		return nil, fmt.Errorf("%w: %v", ErrClaims, err)
	}
	// exp is honoured exactly: the identity's Expires is the one deadline of
	// both the upgrade and the connection's life (flow closes at it), so a
	// token the leeway would admit is refused here rather than accepted and
	// closed at once.
	if !c.ExpiresAt.After(time.Now()) {
		return nil, fmt.Errorf("%w: exp %s has passed", ErrExpired, c.ExpiresAt.UTC().Format(time.RFC3339))
	}
	if from.issuer == "" && v.cfg.Issuer != "" && c.Issuer != v.cfg.Issuer {
		return nil, fmt.Errorf("%w: iss %q is not %q", ErrClaims, c.Issuer, v.cfg.Issuer)
	}
	if !validUser(c.Subject) {
		return nil, fmt.Errorf("%w: missing or invalid sub", ErrClaims)
	}
	id := &Identity{
		Sub:       c.Subject,
		AOR:       siprule.AOR(c.Subject, v.cfg.Domain),
		Expires:   c.ExpiresAt.Time,
		Admin:     c.Admin,
		publish:   c.Publish,
		subscribe: c.Subscribe,
		domain:    v.cfg.Domain,
	}
	if id.publish == nil {
		id.publishSelf = true // its own AOR, matched literally: a sub "*" is no wildcard
	}
	if id.subscribe == nil {
		id.subscribe = []string{"*"}
	}
	return id, nil
}

// validUser accepts SIP user parts made of unreserved characters, which is
// what extensions and user names are; anything else cannot become an AOR.
func validUser(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("-_.!~*'()+", c) >= 0) {
			return false
		}
	}
	return true
}

// Domain is the SIP domain AORs belong to.
func (v *Verifier) Domain() string { return v.cfg.Domain }

// PublishesForOthers reports whether id may publish for AORs besides its
// own (publish ["*"] or a list naming other users): a PBX or an
// integration, which is rate-limited as such rather than as a browser.
func (id *Identity) PublishesForOthers() bool {
	for _, p := range id.publish {
		if p != id.Sub {
			return true
		}
	}
	return false
}

// CanPublish reports whether id may publish (or register) the AOR user@domain.
func (id *Identity) CanPublish(user, domain string) bool {
	return domain == id.domain && (id.publishSelf && user == id.Sub || allowed(id.publish, user))
}

// CanSubscribe reports whether id may watch the AOR user@domain.
func (id *Identity) CanSubscribe(user, domain string) bool {
	return domain == id.domain && allowed(id.subscribe, user)
}

func allowed(list []string, user string) bool {
	return slices.Contains(list, "*") || slices.Contains(list, user)
}

// Signer mints HS256 tokens with the hub's own secret (the token command, the
// demo console URL, tests).
type Signer struct {
	Secret   []byte
	Domain   string
	Issuer   string
	Audience string
}

// Mint returns a token for sub valid for ttl, with optional extra claims applied by fn.
func (s Signer) Mint(sub string, ttl time.Duration, fn func(*Claims)) (string, error) {
	now := time.Now()
	c := Claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Subject:   sub,
			IssuedAt:  jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
			Issuer:    s.Issuer,
		},
		Domain: s.Domain,
	}
	if s.Audience != "" {
		c.Audience = jwt.ClaimStrings{s.Audience}
	}
	if fn != nil {
		fn(&c)
	}
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(s.Secret)
	if err != nil {
		return "", fmt.Errorf("auth: sign token: %w", err)
	}
	return tok, nil
}

// Trusted is the identity of a peer trusted by its network address rather
// than a token: a PBX on the plain-SIP listener that publishes the state of
// every user of the domain (publish ["*"]) and watches nothing.
func Trusted(sub, domain string) *Identity {
	return &Identity{Sub: sub, AOR: siprule.AOR(sub, domain), Expires: time.Now().Add(100 * 365 * 24 * time.Hour),
		publish: []string{"*"}, subscribe: []string{}, domain: domain}
}

package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/presencehub/presencehub/server/auth"
)

// token mints a token with the hub's HS256 secret.
func token(args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	var c config
	fs := flag.NewFlagSet("presencehub token", flag.ContinueOnError)
	fs.SetOutput(stderr)
	c.bind(fs)
	sub := fs.String("sub", "", "user part of the AOR (required)")
	ttl := fs.Duration("ttl", time.Hour, "lifetime")
	pub := fs.String("publish", "", "comma-separated users it may publish (default: itself; * for all)")
	subs := fs.String("subscribe", "", "comma-separated users it may watch (default: *)")
	admin := fs.Bool("admin", false, "may use the admin API")
	if err := c.parse(fs, args, getenv); err != nil {
		return err
	}
	if *sub == "" {
		return errors.New("token: --sub is required")
	}
	secret, _, err := c.secret()
	if err != nil {
		return err
	}
	if secret == nil {
		return errors.New("token: the hub verifies with a public key; mint tokens with its private key")
	}
	tok, err := auth.Signer{Secret: secret, Domain: c.Domain, Issuer: c.JWTIssuer, Audience: c.JWTAudience}.Mint(*sub, *ttl, func(cl *auth.Claims) {
		cl.Publish = splitList(*pub)
		cl.Subscribe = splitList(*subs)
		cl.Admin = *admin
	})
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, tok)
	return nil
}

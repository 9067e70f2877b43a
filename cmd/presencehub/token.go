package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/presencehub/presencehub/server/auth"
)

type tokenOpts struct {
	sub, pub, subs string
	ttl            time.Duration
	admin          bool
}

func (o *tokenOpts) bind(fs *flag.FlagSet) {
	fs.StringVar(&o.sub, "sub", "", "user part of the AOR (required)")
	fs.DurationVar(&o.ttl, "ttl", time.Hour, "lifetime")
	fs.StringVar(&o.pub, "publish", "", "comma-separated users it may publish (default: itself; * for all)")
	fs.StringVar(&o.subs, "subscribe", "", "comma-separated users it may watch (default: *)")
	fs.BoolVar(&o.admin, "admin", false, "may use the admin API")
}

// token mints a token with the hub's HS256 secret, found the way the hub
// finds it (never created here).
func token(args []string, getenv func(string) string, stdout io.Writer) error {
	var c config
	var o tokenOpts
	fs := flag.NewFlagSet("presencehub token", flag.ContinueOnError)
	fs.SetOutput(stdout)
	c.bindListen(fs)
	c.bindKeys(fs)
	o.bind(fs)
	if err := c.parse(fs, args, getenv); err != nil {
		return err
	}
	if o.sub == "" {
		return errors.New("token: --sub is required (e.g. presencehub token --sub 1001)")
	}
	secret, err := c.secret()
	if err != nil {
		return fmt.Errorf("token: %w", err)
	}
	tok, err := c.signer(secret).Mint(o.sub, o.ttl, func(cl *auth.Claims) {
		cl.Publish = splitList(o.pub)
		cl.Subscribe = splitList(o.subs)
		cl.Admin = o.admin
	})
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, tok)
	return nil
}

package main

import (
	"context"
	"crypto/tls"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"
)

// healthcheck asks the local hub's /healthz; it is the container's
// HEALTHCHECK (the runtime image has no curl).
func healthcheck(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
	var c config
	fs := flag.NewFlagSet("presencehub healthcheck", flag.ContinueOnError)
	fs.SetOutput(stderr)
	c.bind(fs)
	if err := c.parse(fs, args, getenv); err != nil {
		return err
	}
	host, port, err := net.SplitHostPort(c.HTTPAddr)
	if err != nil {
		return err
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	scheme := "http"
	if c.TLSCert != "" {
		scheme = "https"
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, scheme+"://"+net.JoinHostPort(host, port)+"/healthz", nil)
	if err != nil {
		return err
	}
	client := http.DefaultClient
	if scheme == "https" {
		client = insecureLocalClient()
	}
	res, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("healthcheck: HTTP %d", res.StatusCode)
	}
	return nil
}

// insecureLocalClient skips certificate checks: it only ever talks to this
// host's own listener, whose certificate names the public host.
func insecureLocalClient() *http.Client {
	return &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec // loopback self-check
}

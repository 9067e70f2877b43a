package main

import (
	"context"
	"crypto/tls"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"
)

// healthcheck asks the local hub's /readyz: healthy means able to serve
// (listening, store answering, not shutting down), not merely running. It
// is the container's HEALTHCHECK (the runtime image has no curl).
func healthcheck(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	var c config
	fs := flag.NewFlagSet("presencehub healthcheck", flag.ContinueOnError)
	fs.SetOutput(stdout)
	c.bindListen(fs)
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
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, scheme+"://"+net.JoinHostPort(host, port)+"/readyz", nil)
	if err != nil {
		return err
	}
	client := http.DefaultClient
	if scheme == "https" {
		client = insecureLocalClient()
	}
	res, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("not serving: %w", err)
	}
	body, _ := io.ReadAll(io.LimitReader(res.Body, 512))
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("not serving: %s answered HTTP %d %s", req.URL, res.StatusCode, strings.TrimSpace(string(body)))
	}
	fmt.Fprintln(stdout, "serving")
	return nil
}

// insecureLocalClient skips certificate checks: it only ever talks to this
// host's own listener, whose certificate names the public host.
func insecureLocalClient() *http.Client {
	return &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec // loopback self-check
}

package main

import (
	"bytes"
	"context"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/presencehub/presencehub/internal/sipclient"
)

// runBinary runs the built presencehub in dir with env (and no PRESENCEHUB_*
// variable of the test's own environment) and returns its exit code and
// output.
func runBinary(t *testing.T, dir string, env []string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, presencehubBinary(t), args...)
	cmd.Dir = dir
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PRESENCEHUB_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, env...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("presencehub %v did not end within 20 s", args)
	}
	if _, ok := err.(*exec.ExitError); err != nil && !ok {
		t.Fatal(err)
	}
	return cmd.ProcessState.ExitCode(), out.String(), errOut.String()
}

func TestCLI_HelpVersionAndBadValues(t *testing.T) {
	tests := []struct {
		name       string
		env        []string
		args       []string
		code       int
		stdout     []string // each must appear
		stderr     []string
		notStdout  []string
		noKeyAfter bool // no presencehub.key may be created
	}{
		{name: "-h lists the commands and exits 0", args: []string{"-h"}, code: 0,
			stdout: []string{"serve", "token", "publish", "healthcheck", "bench", "version", "--http-addr", "PRESENCEHUB_HTTP_ADDR"}},
		{name: "help token is token -h", args: []string{"help", "token"}, code: 0, stdout: []string{"Usage: presencehub token", "--sub"}},
		{name: "token -h shows its own flags and an example", args: []string{"token", "-h"}, code: 0,
			stdout:    []string{"Usage: presencehub token", "Example:", "presencehub token --sub 1001", "--sub", "--ttl", "--db", "--jwt-secret"},
			notStdout: []string{"--ping-interval", "--max-headers", "--write-queue"}},
		{name: "publish -h shows its own flags and an example", args: []string{"publish", "-h"}, code: 0,
			stdout:    []string{"Usage: presencehub publish", "Example:", "--as", "--state", "--token-file", "PRESENCEHUB_TOKEN"},
			notStdout: []string{"--ping-interval", "--max-headers"}},
		{name: "healthcheck -h", args: []string{"healthcheck", "-h"}, code: 0, stdout: []string{"/readyz", "--http-addr"}, notStdout: []string{"--jwt-secret"}},
		{name: "serve -h", args: []string{"serve", "-h"}, code: 0, stdout: []string{"--trusted-proxies", "--jwks-url", "--metrics-token"}},
		{name: "version", args: []string{"version"}, code: 0, stdout: []string{"presencehub ", "go1."}},
		{name: "unknown command", args: []string{"frobnicate"}, code: 2, stderr: []string{`unknown command "frobnicate"`, "serve, token, publish"}},
		{name: "unknown flag", args: []string{"--pingg-interval", "3s"}, code: 1, stderr: []string{"unknown flag --pingg-interval"}},
		{name: "a duration without unit in a variable", env: []string{"PRESENCEHUB_PING_INTERVAL=20"}, code: 1,
			stderr: []string{`PRESENCEHUB_PING_INTERVAL="20"`, "want a duration like 20s"}, noKeyAfter: true},
		{name: "a duration without unit on the command line", args: []string{"--ping-interval", "20"}, code: 1,
			stderr: []string{`--ping-interval="20"`, "want a duration like 20s"}},
		{name: "a number that is not one", env: []string{"PRESENCEHUB_WRITE_QUEUE=lots"}, code: 1, stderr: []string{`PRESENCEHUB_WRITE_QUEUE="lots"`, "whole number"}},
		{name: "zero limit", args: []string{"--max-headers", "0"}, code: 1, stderr: []string{`--max-headers="0"`, "above 0"}},
		{name: "negative minimum expiry", args: []string{"--publish-min-expires", "-1s"}, code: 1, stderr: []string{`--publish-min-expires="-1s"`, "positive duration"}},
		{name: "zero ping interval", env: []string{"PRESENCEHUB_PING_INTERVAL=0s"}, code: 1, stderr: []string{`PRESENCEHUB_PING_INTERVAL="0s"`, "positive duration"}},
		{name: "public URL without scheme", args: []string{"--public-url", "hub.example.com"}, code: 1, stderr: []string{`--public-url="hub.example.com"`, "want a URL like https://"}},
		{name: "a bool that is not one", args: []string{"token", "--sub", "1", "--admin=yes"}, code: 1, stderr: []string{`--admin="yes"`, "want true or false"}},
		{name: "TLS certificate without key", args: []string{"--tls-cert", "/etc/hostname"}, code: 1, stderr: []string{"--tls-cert and --tls-key: give both or neither"}},
		{name: "a memory limit that is no size", args: []string{"--memory-limit", "lots"}, code: 1, stderr: []string{`--memory-limit="lots"`, "want a size like 64MiB"}},
		{name: "a negative GC headroom", env: []string{"PRESENCEHUB_GC_HEADROOM=-1MiB"}, code: 1, stderr: []string{`PRESENCEHUB_GC_HEADROOM="-1MiB"`, "want a size like"}},
		{name: "GC percent 0", args: []string{"--gc-percent", "0"}, code: 1, stderr: []string{`--gc-percent="0"`, "above 0"}},
		{name: "a GOGC the hub cannot read", env: []string{"GOGC=lots"}, code: 1, stderr: []string{`GOGC="lots"`, "want a whole number or off"}},
		{name: "log format yaml", args: []string{"--log-format", "yaml"}, code: 1, stderr: []string{`--log-format="yaml"`, "want text, json or auto"}},
		{name: "log format yaml from the environment", env: []string{"PRESENCEHUB_LOG_FORMAT=yaml"}, code: 1, stderr: []string{`PRESENCEHUB_LOG_FORMAT="yaml"`}},
		{name: "log level", args: []string{"--log-level", "verbose"}, code: 1, stderr: []string{`--log-level="verbose"`, "debug, info, warn or error"}},
		{name: "publish concurrency 0", args: []string{"--publish-concurrency", "0"}, code: 1, stderr: []string{`--publish-concurrency="0"`, "want 1 or more"}},
		{name: "bad CIDR", env: []string{"PRESENCEHUB_TRUSTED_PROXIES=10.0.0.0/33"}, code: 1, stderr: []string{`PRESENCEHUB_TRUSTED_PROXIES="10.0.0.0/33"`, "CIDRs"}},
		{name: "short secret", args: []string{"--jwt-secret", "short"}, code: 1, stderr: []string{"--jwt-secret: 5 bytes; want at least 32"}},
		{name: "JWKS that is no URL", args: []string{"--jwks-url", "idp.example.com/certs"}, code: 1, stderr: []string{"--jwks-url", "want a URL like https://"}},
		{name: "a database that is a kernel file", args: []string{"--db", "/proc/version"}, code: 1,
			stderr: []string{"--db=/proc/version: not an SQLite database"}, noKeyAfter: true},
		{name: "a database in a missing directory", args: []string{"--db", "/nonexistent/dir/hub.db"}, code: 1, stderr: []string{"--db=/nonexistent/dir/hub.db: directory /nonexistent/dir"}},
		{name: "a database that is a directory", args: []string{"--db", "/tmp"}, code: 1, stderr: []string{"--db=/tmp: not a regular file"}},
		{name: "token without the hub's key fails, creating none", args: []string{"token", "--sub", "1001"}, code: 1,
			stderr: []string{"no hub secret at", "presencehub.key", "give the hub's --db or --jwt-secret"}, noKeyAfter: true},
		{name: "publish without the hub's key fails, creating none", args: []string{"publish", "--as", "1001"}, code: 1,
			stderr: []string{"no hub secret at"}, noKeyAfter: true},
		{name: "token for an in-memory hub", args: []string{"token", "--sub", "1", "--db", ":memory:"}, code: 1, stderr: []string{":memory:", "--jwt-secret"}},
		{name: "token for a JWKS hub", args: []string{"token", "--sub", "1", "--jwks-url", "https://idp.example.com/certs"}, code: 1, stderr: []string{"verifies tokens with JWKS"}},
		{name: "token with a secret", args: []string{"token", "--sub", "1001", "--jwt-secret", testSecret}, code: 0},
		{name: "token without --sub", args: []string{"token", "--jwt-secret", testSecret}, code: 1, stderr: []string{"--sub is required"}},
		{name: "publish with an unknown state", args: []string{"publish", "--as", "1", "--state", "ringing"}, code: 1, stderr: []string{`--state="ringing"`, "early, confirmed, hold or idle"}},
		{name: "healthcheck with no hub", args: []string{"healthcheck", "--http-addr", "127.0.0.1:1"}, code: 1, stderr: []string{"not serving"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			code, stdout, stderr := runBinary(t, dir, tt.env, tt.args...)
			if code != tt.code {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tt.code, stdout, stderr)
			}
			for _, s := range tt.stdout {
				if !strings.Contains(stdout, s) {
					t.Errorf("stdout lacks %q:\n%s", s, stdout)
				}
			}
			for _, s := range tt.notStdout {
				if strings.Contains(stdout, s) {
					t.Errorf("stdout has %q", s)
				}
			}
			for _, s := range tt.stderr {
				if !strings.Contains(stderr, s) {
					t.Errorf("stderr lacks %q:\n%s", s, stderr)
				}
			}
			if tt.code != 0 && strings.Count(stderr, "\n") > 3 {
				t.Errorf("an error prints more than the error:\n%s", stderr)
			}
			if tt.noKeyAfter {
				if _, err := os.Stat(filepath.Join(dir, "presencehub.key")); err == nil {
					t.Error("a presencehub.key was created")
				}
			}
		})
	}
}

// A misspelled variable is warned about at start, with the setting meant.
func TestServe_UnknownVariableIsWarned(t *testing.T) {
	h := startHub(t, "PRESENCEHUB_PING_INTERVALL=5s", "PRESENCEHUB_REQUIRE_NGINX=1")
	line := h.waitLog("unknown variable")
	if line["var"] != "PRESENCEHUB_PING_INTERVALL" || !strings.Contains(line["hint"].(string), "PRESENCEHUB_PING_INTERVAL?") {
		t.Fatalf("warning %v", line)
	}
	if strings.Count(h.stderr.String(), "unknown variable") != 1 {
		t.Errorf("test-suite variables warned too:\n%s", h.stderr.String())
	}
}

// token and publish find the key the hub generated, by the hub's --db, from
// another directory; a token from another key gets a clear 401 message; a
// token file keeps the token out of the process list.
func TestTokenAndPublish_FindTheHubsKey(t *testing.T) {
	hubDir := t.TempDir()
	db := filepath.Join(hubDir, "presencehub.db")
	h := startHubNoSecret(t, "PRESENCEHUB_DB="+db)
	hubURL := "ws://" + h.addr + "/ws"
	elsewhere := t.TempDir()
	env := []string{"PRESENCEHUB_DOMAIN=" + testDomain}

	code, stdout, stderr := runBinary(t, elsewhere, env, "publish", "--hub", hubURL, "--db", db, "--as", "1001", "--state", "early")
	if code != 0 || !strings.Contains(stdout, "sip:1001@"+testDomain+" is now early") {
		t.Fatalf("publish with the hub's --db: exit %d\n%s%s", code, stdout, stderr)
	}
	code, tok, stderr := runBinary(t, elsewhere, append(env, "PRESENCEHUB_DB="+db), "token", "--sub", "1002")
	if code != 0 || !regexp.MustCompile(`^[\w-]+\.[\w-]+\.[\w-]+\n$`).MatchString(tok) {
		t.Fatalf("token with PRESENCEHUB_DB: exit %d %q %s", code, tok, stderr)
	}
	tokenFile := filepath.Join(elsewhere, "token")
	if err := os.WriteFile(tokenFile, []byte(tok), 0o600); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr = runBinary(t, elsewhere, env, "publish", "--hub", hubURL, "--as", "1002", "--token-file", tokenFile, "--state", "confirmed")
	if code != 0 || !strings.Contains(stdout, "is now confirmed") {
		t.Fatalf("publish --token-file: exit %d\n%s%s", code, stdout, stderr)
	}
	if _, err := os.Stat(filepath.Join(elsewhere, "presencehub.key")); err == nil {
		t.Fatal("a key was generated in the other directory")
	}

	// A secret that is not the hub's.
	code, _, stderr = runBinary(t, elsewhere, env, "publish", "--hub", hubURL, "--as", "1001", "--jwt-secret", "another secret of at least 32 bytes....")
	if code != 1 || !strings.Contains(stderr, "refused the token (HTTP 401)") || !strings.Contains(stderr, "--jwt-secret") {
		t.Fatalf("publish with a foreign secret: exit %d\n%s", code, stderr)
	}
	if strings.Count(stderr, "\n") != 1 {
		t.Errorf("more than one line:\n%s", stderr)
	}
}

// startHubNoSecret starts a hub without a configured key: it generates its
// secret next to its database.
func startHubNoSecret(t *testing.T, env ...string) *hubProcess {
	return startHub(t, append(env, "PRESENCEHUB_JWT_SECRET=")...)
}

// The console link a hub prints when it generated its own key carries a
// token that hub accepts, also when it requires an issuer and an audience.
func TestServe_GeneratedKey_DemoConsoleTokenIsAccepted(t *testing.T) {
	for _, tt := range []struct {
		name string
		env  []string
	}{
		{"no issuer or audience required", nil},
		{"--jwt-issuer and --jwt-audience required", []string{"PRESENCEHUB_JWT_ISSUER=https://idp.test", "PRESENCEHUB_JWT_AUDIENCE=presencehub"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := startHubNoSecret(t, tt.env...)
			tokenParam := regexp.MustCompile(`[?&]token=([^&\s]+)`)
			var tok string
			for deadline := time.Now().Add(30 * time.Second); tok == ""; {
				if m := tokenParam.FindStringSubmatch(h.stderr.String()); m != nil {
					var err error
					if tok, err = url.QueryUnescape(m[1]); err != nil {
						t.Fatal(err)
					}
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("no console link printed:\n%s", h.stderr.String())
				}
				time.Sleep(20 * time.Millisecond)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			cl, err := sipclient.Dial(ctx, "ws://"+h.addr+"/ws", sipclient.Options{Token: tok})
			if err != nil {
				t.Fatalf("the hub refused its own console token: %v", err)
			}
			cl.Close()
		})
	}
}

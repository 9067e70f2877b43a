package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/emiago/sipgo/sip"
	"github.com/presencehub/presencehub/compositor/dialoginfo"
	"github.com/presencehub/presencehub/internal/sipclient"
	"github.com/presencehub/presencehub/internal/siprule"
	"github.com/presencehub/presencehub/server/auth"
)

// The binary is built once per test run (signals need a real process).
var (
	buildOnce sync.Once
	binDir    string
	binPath   string
	buildErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

func presencehubBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		if binDir, buildErr = os.MkdirTemp("", "presencehub-bin-"); buildErr != nil {
			return
		}
		binPath = filepath.Join(binDir, "presencehub")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

const (
	testDomain = "hub.test"
	testSecret = "a test secret of at least 32 bytes!"
)

// logBuffer collects the child's stderr (JSON log lines).
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// hubProcess is a presencehub child process on 127.0.0.1 and a random port.
type hubProcess struct {
	t      *testing.T
	cmd    *exec.Cmd
	addr   string
	stderr *logBuffer
	exited chan struct{}
	err    error // Wait's result, after exited
}

// hubCommand is the binary set up to serve in its own temporary directory:
// no PRESENCEHUB_* variable of the caller's environment, the test domain and
// secret, a random HTTP port, JSON logs; env is added last (it wins).
func hubCommand(t *testing.T, env ...string) *exec.Cmd {
	t.Helper()
	bin := presencehubBinary(t)
	dir := t.TempDir()
	cmd := exec.Command(bin)
	cmd.Dir = dir
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PRESENCEHUB_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env,
		"PRESENCEHUB_HTTP_ADDR=127.0.0.1:0",
		"PRESENCEHUB_DB="+filepath.Join(dir, "presencehub.db"),
		"PRESENCEHUB_DOMAIN="+testDomain,
		"PRESENCEHUB_JWT_SECRET="+testSecret,
		"PRESENCEHUB_LOG_FORMAT=json",
		"PRESENCEHUB_SHUTDOWN_TIMEOUT=5s",
	)
	cmd.Env = append(cmd.Env, env...)
	return cmd
}

func startHub(t *testing.T, env ...string) *hubProcess {
	t.Helper()
	cmd := hubCommand(t, env...)
	h := &hubProcess{t: t, cmd: cmd, stderr: &logBuffer{}, exited: make(chan struct{})}
	cmd.Stderr = h.stderr
	cmd.Stdout = h.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { h.err = cmd.Wait(); close(h.exited) }()
	t.Cleanup(func() {
		select {
		case <-h.exited:
		default:
			_ = cmd.Process.Kill()
			<-h.exited
		}
		if t.Failed() {
			t.Logf("presencehub log:\n%s", h.stderr.String())
		}
	})
	line := h.waitLog("presencehub serving")
	h.addr, _ = line["addr"].(string)
	if h.addr == "" {
		t.Fatalf("no addr in %v", line)
	}
	return h
}

// waitLog waits for a JSON log line whose msg contains msg and returns it.
func (h *hubProcess) waitLog(msg string) map[string]any {
	h.t.Helper()
	// A bound for a line that comes, generous for a loaded machine (the
	// process may still be starting under -race); not a speed check.
	deadline := time.Now().Add(30 * time.Second)
	for {
		// Whether the process had ended is read before the log: a line
		// written just before the exit is then always seen by the scan.
		exited := false
		select {
		case <-h.exited:
			exited = true
		default:
		}
		sc := bufio.NewScanner(strings.NewReader(h.stderr.String()))
		sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
		for sc.Scan() {
			var line map[string]any
			if json.Unmarshal(sc.Bytes(), &line) == nil {
				if m, _ := line["msg"].(string); strings.Contains(m, msg) {
					return line
				}
			}
		}
		if exited {
			h.t.Fatalf("presencehub exited (%v) before logging %q", h.err, msg)
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("no log line %q within 30s", msg)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (h *hubProcess) signal(sig syscall.Signal) {
	h.t.Helper()
	if err := h.cmd.Process.Signal(sig); err != nil {
		h.t.Fatal(err)
	}
}

// exitCode waits for the process to end and returns its exit code.
func (h *hubProcess) exitCode(within time.Duration) int {
	h.t.Helper()
	select {
	case <-h.exited:
		return h.cmd.ProcessState.ExitCode()
	case <-time.After(within):
		h.t.Fatalf("presencehub still running %v after the signal", within)
		return -1
	}
}

func mint(t *testing.T, sub string, fn func(*auth.Claims)) string {
	t.Helper()
	tok, err := auth.Signer{Secret: []byte(testSecret), Domain: testDomain}.Mint(sub, time.Hour, fn)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// aor is the canonical AOR of user in the test domain.
func aor(user string) string { return siprule.AOR(user, testDomain) }

// publishEarly PUBLISHes, on cl, dialog state for a with one early dialog
// "d".
func publishEarly(ctx context.Context, cl *sipclient.Client, a string) (*sip.Response, error) {
	doc := dialoginfo.Document{State: "full", Entity: a, Dialogs: []dialoginfo.Dialog{{ID: "d", State: "early"}}}
	req, _ := cl.NewRequest(sip.PUBLISH, a, a)
	req.AppendHeader(sip.NewHeader("Event", "dialog"))
	ct := sip.ContentTypeHeader("application/dialog-info+xml")
	req.AppendHeader(&ct)
	req.SetBody(doc.AppendXML(nil))
	return cl.Do(ctx, req)
}

func TestServe_SIGTERM_FinalNotifiesAndCleanExit(t *testing.T) {
	h := startHub(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	wsURL := "ws://" + h.addr + "/ws"

	// SIGUSR1 switches request-level debug logging on at run time.
	h.signal(syscall.SIGUSR1)
	if lvl := h.waitLog("log level changed")["level"]; lvl != "DEBUG" {
		t.Fatalf("level after SIGUSR1 = %v", lvl)
	}

	type watcher struct {
		c     *sipclient.Client
		reqs  chan *sip.Request
		token string
	}
	var watchers []watcher
	for _, ext := range []string{"2001", "2002", "2003"} {
		w := watcher{reqs: make(chan *sip.Request, 10), token: mint(t, ext, nil)}
		c, err := sipclient.Dial(ctx, wsURL, sipclient.Options{Token: w.token, Incoming: w.reqs})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		w.c = c
		req, err := c.NewRequest(sip.SUBSCRIBE, aor(ext), aor("1001"))
		if err != nil {
			t.Fatal(err)
		}
		req.AppendHeader(sip.NewHeader("Event", "dialog"))
		req.AppendHeader(sip.NewHeader("Accept", "application/dialog-info+xml"))
		req.AppendHeader(sip.NewHeader("Expires", "600"))
		if res, err := c.Do(ctx, req); err != nil || res.StatusCode != 200 {
			t.Fatalf("SUBSCRIBE as %s: %v %v", ext, res, err)
		}
		<-w.reqs // the initial NOTIFY
		watchers = append(watchers, w)
	}
	pubToken := mint(t, "1001", nil)
	pc, err := sipclient.Dial(ctx, wsURL, sipclient.Options{Token: pubToken})
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	doc := dialoginfo.Document{State: "full", Entity: aor("1001"), Dialogs: []dialoginfo.Dialog{{ID: "d1", CallID: "c1", Direction: "recipient", State: "early"}}}
	pub, _ := pc.NewRequest(sip.PUBLISH, aor("1001"), aor("1001"))
	pub.AppendHeader(sip.NewHeader("Event", "dialog"))
	pub.AppendHeader(sip.NewHeader("Expires", "600"))
	ct := sip.ContentTypeHeader("application/dialog-info+xml")
	pub.AppendHeader(&ct)
	pub.SetBody(doc.AppendXML(nil))
	if res, err := pc.Do(ctx, pub); err != nil || res.StatusCode != 200 {
		t.Fatalf("PUBLISH: %v %v", res, err)
	}
	for _, w := range watchers {
		if n := <-w.reqs; !strings.Contains(string(n.Body()), "early") {
			t.Fatalf("NOTIFY after PUBLISH: %s", n.Body())
		}
	}

	h.signal(syscall.SIGTERM)
	for i, w := range watchers {
		select {
		case n := <-w.reqs:
			if got := n.GetHeader("Subscription-State"); got == nil || got.Value() != "terminated;reason=deactivated" {
				t.Errorf("watcher %d: final NOTIFY Subscription-State %v", i, got)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("watcher %d: no final NOTIFY after SIGTERM", i)
		}
		select {
		case <-w.c.Done():
			if code := websocket.CloseStatus(w.c.Err()); code != websocket.StatusGoingAway {
				t.Errorf("watcher %d: closed with %d (%v), want 1001", i, code, w.c.Err())
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("watcher %d: socket not closed", i)
		}
	}
	if code := h.exitCode(10 * time.Second); code != 0 {
		t.Errorf("exit code %d, want 0", code)
	}
	h.waitLog("stopped")

	logs := h.stderr.String()
	if !strings.Contains(logs, `"msg":"sip in"`) || !strings.Contains(logs, "access_token=REDACTED") {
		t.Error("debug log (after SIGUSR1) has no request lines or no masked access_token")
	}
	for _, tok := range []string{pubToken, watchers[0].token, watchers[1].token} {
		if strings.Contains(logs, tok) || strings.Contains(logs, tok[strings.LastIndexByte(tok, '.')+1:]) {
			t.Error("a token appears in the log")
		}
	}
}

// selfSigned returns a PEM certificate and key for 127.0.0.1 named cn.
func selfSigned(t *testing.T, cn string) (certPEM, keyPEM []byte, cert *x509.Certificate) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ = x509.ParseCertificate(der)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), cert
}

func TestServe_SIGHUP_ReloadsTLSCertificateKeepingConnections(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	certA, keyA, a := selfSigned(t, "presencehub-A")
	certB, keyB, b := selfSigned(t, "presencehub-B")
	write := func(cert, key []byte) {
		t.Helper()
		if err := os.WriteFile(certFile, cert, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(keyFile, key, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(certA, keyA)
	h := startHub(t, "PRESENCEHUB_TLS_CERT="+certFile, "PRESENCEHUB_TLS_KEY="+keyFile)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	roots := x509.NewCertPool()
	roots.AddCert(a)
	roots.AddCert(b)
	// handshake makes a new TLS connection and returns the certificate the hub showed.
	handshake := func() string {
		t.Helper()
		c, err := tls.Dial("tcp", h.addr, &tls.Config{RootCAs: roots, ServerName: "127.0.0.1"})
		if err != nil {
			t.Fatalf("TLS handshake: %v", err)
		}
		defer c.Close()
		return c.ConnectionState().PeerCertificates[0].Subject.CommonName
	}
	if cn := handshake(); cn != "presencehub-A" {
		t.Fatalf("first certificate %q", cn)
	}

	// An open wss connection (the hub speaks SIP on it).
	var seen string
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, ServerName: "127.0.0.1",
		VerifyConnection: func(cs tls.ConnectionState) error { seen = cs.PeerCertificates[0].Subject.CommonName; return nil }}}}
	ws, _, err := websocket.Dial(ctx, "wss://"+h.addr+"/ws?access_token="+mint(t, "2001", nil),
		&websocket.DialOptions{HTTPClient: client, Subprotocols: []string{"sip"}})
	if err != nil {
		t.Fatalf("wss dial: %v", err)
	}
	defer ws.CloseNow()
	if seen != "presencehub-A" {
		t.Fatalf("wss connection saw %q", seen)
	}
	options := func(n int) {
		t.Helper()
		msg := fmt.Sprintf("OPTIONS sip:%s SIP/2.0\r\nVia: SIP/2.0/WSS t.invalid;branch=z9hG4bKopt%d\r\nMax-Forwards: 70\r\n"+
			"From: <sip:2001@%s>;tag=t%d\r\nTo: <sip:%s>\r\nCall-ID: opt-%d\r\nCSeq: %d OPTIONS\r\nContent-Length: 0\r\n\r\n",
			testDomain, n, testDomain, n, testDomain, n, n)
		if err := ws.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
			t.Fatalf("OPTIONS %d on the open connection: %v", n, err)
		}
		_, res, err := ws.Read(ctx)
		if err != nil || !bytes.HasPrefix(res, []byte("SIP/2.0 200")) {
			t.Fatalf("OPTIONS %d on the open connection: %q %v", n, res, err)
		}
	}
	options(1)

	write(certB, keyB)
	h.signal(syscall.SIGHUP)
	h.waitLog("TLS certificate reloaded")
	if cn := handshake(); cn != "presencehub-B" {
		t.Errorf("after SIGHUP new handshakes see %q, want presencehub-B", cn)
	}
	options(2) // the connection made with certificate A is still up

	// A broken file is refused; the hub keeps serving certificate B.
	if err := os.WriteFile(certFile, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	h.signal(syscall.SIGHUP)
	h.waitLog("TLS reload failed")
	if cn := handshake(); cn != "presencehub-B" {
		t.Errorf("after a failed reload new handshakes see %q, want presencehub-B", cn)
	}
	options(3)

	// Shutting down closes the connection with 1001.
	closed := make(chan error, 1)
	go func() {
		_, _, err := ws.Read(ctx) // answers the hub's close frame
		closed <- err
	}()
	h.signal(syscall.SIGTERM)
	if code := h.exitCode(10 * time.Second); code != 0 {
		t.Errorf("exit code %d, want 0", code)
	}
	if err := <-closed; websocket.CloseStatus(err) != websocket.StatusGoingAway {
		t.Errorf("wss connection ended with %v, want close 1001", err)
	}
}

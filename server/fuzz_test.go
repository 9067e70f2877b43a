package server

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"unicode/utf8"

	"github.com/coder/websocket"
	"github.com/emiago/sipgo/sip"
	"github.com/presencehub/presencehub/compositor/store/memstore"
	"github.com/presencehub/presencehub/server/auth"
	"github.com/presencehub/presencehub/server/flow"
)

// recorder is a flow.Conn that keeps what the hub sends.
type recorder struct {
	mu   sync.Mutex
	sent [][]byte
}

func (r *recorder) Send(msg []byte) error {
	r.mu.Lock()
	r.sent = append(r.sent, bytes.Clone(msg))
	r.mu.Unlock()
	return nil
}
func (r *recorder) Close(websocket.StatusCode, string) {}
func (r *recorder) RemoteIP() string                   { return "192.0.2.1" }

// FuzzHandleMessage feeds arbitrary WebSocket messages through the real
// frame → parse → authorize → respond path: it must never panic, and every
// message the hub sends must be well-formed SIP.
func FuzzHandleMessage(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("..", "testdata", "wire", "*", "*-c2s-*.sip"))
	for _, name := range files {
		if data, err := os.ReadFile(name); err == nil {
			f.Add(data)
		}
	}
	f.Add([]byte("\r\n\r\n"))
	// Copied headers repeated, broken or missing (RFC 3261 §8.2.6.2, §21.4.1).
	const head = "OPTIONS sip:hub.test SIP/2.0\r\nVia: SIP/2.0/WS x.invalid;branch=z9hG4bKd\r\n"
	for _, h := range []string{
		"From: <sip:1001@hub.test>;tag=a\r\nTo: <sip:1001@hub.test>\r\nCall-ID: a\r\ni: b\r\nCSeq: 1 OPTIONS\r\n",
		"From: <sip:1001@hub.test>;tag=a\r\nTo: <sip:1001@hub.test>\r\nCall-ID: a\r\nCSeq: 1 OPTIONS\r\nCSeq: 2 OPTIONS\r\n",
		"From: <sip:1001@hub.test>;tag=a\r\nf: <sip:1002@hub.test>;tag=b\r\nTo: <sip:1001@hub.test>\r\nCall-ID: a\r\nCSeq: 1 OPTIONS\r\n",
		"From: <sip:1001@hub.test>;tag=a\r\nTo: <sip:1001@hub.test>\r\nt: <sip:1002@hub.test>\r\nCall-ID: a\r\nCSeq: 1 OPTIONS\r\n",
		"From: <sip:1001@hub.test>;tag=a\r\nTo: <sip:1001@hub.test>\r\nCall-ID: a\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\nl: 0\r\n",
		"From: <sip:1001@hub.test>;tag=a\r\nTo: <sip:1001@hub.test>\r\nCall-ID: a\x00b\r\nCSeq: 1 OPTIONS\r\n",
		"From: \"\xff\" <sip:1001@hub.test>;tag=a\r\nTo: <sip:1001@hub.test>\r\nCall-ID: a\xc3\x28\r\nCSeq: 1 OPTIONS\r\n",
		"From: <sip:1001@hub.test>;tag=a\r\nTo: <sip:1001@hub.test>\r\nCSeq: 1 OPTIONS\r\n",
	} {
		f.Add([]byte(head + h + "\r\n"))
	}
	f.Add([]byte("SUBSCRIBE sip:1001@hub.test SIP/2.0\r\nVia: SIP/2.0/WS x.invalid;branch=z9hG4bK1\r\nFrom: <sip:1001@hub.test>;tag=a\r\nTo: <sip:1001@hub.test>;tag=b\r\nCall-ID: c\r\nCSeq: 1 SUBSCRIBE\r\nEvent: dialog\r\nExpires: 0\r\n\r\n"))

	secret := bytes.Repeat([]byte("k"), 32)
	v, err := auth.NewVerifier(auth.Config{Secret: secret, Domain: "hub.test"})
	if err != nil {
		f.Fatal(err)
	}
	s, err := New(Config{Domain: "hub.test", Verifier: v, Store: memstore.New(memstore.Options{})})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { s.Close() })
	// The captures carry a dummy Bearer; the connection itself is authenticated.
	id, err := v.Verify(mustMint(f, secret))
	if err != nil {
		f.Fatal(err)
	}
	parser := sip.NewParser()
	f.Fuzz(func(t *testing.T, data []byte) {
		rec := &recorder{}
		fl := flow.New(rec, id)
		defer fl.Close()
		s.handleMessage(fl, newLimiter(1000, 1000, 1), data)
		rec.mu.Lock()
		defer rec.mu.Unlock()
		for _, out := range rec.sent {
			msg, err := parser.ParseSIP(out)
			if err != nil {
				t.Fatalf("hub sent unparsable SIP: %v\n%s", err, out)
			}
			// Nothing broken is echoed: no NUL, no invalid UTF-8.
			if bytes.IndexByte(out, 0) >= 0 || !utf8.Valid(out) {
				t.Fatalf("hub sent NUL or invalid UTF-8:\n%q", out)
			}
			if res, ok := msg.(*sip.Response); ok && (res.StatusCode < 100 || res.Via() == nil || res.CSeq() == nil) {
				t.Fatalf("malformed response:\n%s", out)
			}
		}
	})
}

func mustMint(tb testing.TB, secret []byte) string {
	tok, err := auth.Signer{Secret: secret, Domain: "hub.test"}.Mint("1001", 3600e9, func(c *auth.Claims) { c.Publish = []string{"*"} })
	if err != nil {
		tb.Fatal(err)
	}
	return tok
}

var _ = context.Background

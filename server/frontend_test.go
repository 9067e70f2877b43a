package server_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/emiago/sipgo/sip"
	"github.com/golang-jwt/jwt/v5"
	"github.com/presencehub/presencehub/internal/sipclient"
	"github.com/presencehub/presencehub/server"
	"github.com/presencehub/presencehub/server/auth"
	"github.com/presencehub/presencehub/server/servertest"
)

// Every REGISTER and OPTIONS that real JsSIP and SIP.js sent gets the answer
// those libraries need (docs/protocol.md, "What JsSIP and SIP.js need").
func TestWire_RegisterAndOptions_FromRealClients(t *testing.T) {
	hub := servertest.Start(t, servertest.Options{})
	tests := []struct {
		file        string
		code        int
		wantContact []string // substrings of the Contact echoed in the 200
		wantHeaders map[string]string
	}{
		{file: "jssip-node/01-c2s-REGISTER.sip", code: 200, wantContact: []string{"expires=300", `+sip.instance="<urn:uuid:`, "reg-id=1"}},
		{file: "jssip-chromium/01-c2s-REGISTER.sip", code: 200, wantContact: []string{"expires=", "+sip.instance"}},
		{file: "sipjs-node/01-c2s-REGISTER.sip", code: 200, wantContact: []string{"expires="}},
		{file: "sipjs-chromium/01-c2s-REGISTER.sip", code: 200, wantContact: []string{"expires="}},
		{file: "jssip-node/25-c2s-REGISTER_expires0.sip", code: 200},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			c := hub.Dial(testCtx(t), "1001", sipclient.Options{})
			req := wireRequest(t, tt.file, hub.Token("1001", nil))
			res := do(t, c, req)
			if res.StatusCode != tt.code {
				t.Fatalf("got %d %s, want %d", res.StatusCode, res.Reason, tt.code)
			}
			if _, ok := res.Via().Params.Get("received"); !ok {
				t.Errorf("top Via has no received: %s", res.Via().Value())
			}
			contact := header(res, "Contact")
			for _, want := range tt.wantContact {
				if !strings.Contains(contact, want) {
					t.Errorf("Contact %q lacks %q", contact, want)
				}
			}
		})
	}
}

func TestOptions_Returns200WithCapabilities(t *testing.T) {
	hub := servertest.Start(t, servertest.Options{})
	c := hub.Dial(testCtx(t), "", sipclient.Options{}) // OPTIONS needs no token
	res := do(t, c, newReq(t, c, sip.OPTIONS, "1001", "1001"))
	if res.StatusCode != 200 {
		t.Fatalf("OPTIONS: %d", res.StatusCode)
	}
	for name, want := range map[string]string{
		"Allow": "SUBSCRIBE", "Accept": "application/pidf+xml", "Allow-Events": "dialog",
	} {
		if !strings.Contains(header(res, name), want) {
			t.Errorf("%s = %q, want it to contain %q", name, header(res, name), want)
		}
	}
}

func TestRegister_Rules(t *testing.T) {
	hub := servertest.Start(t, servertest.Options{})
	tests := []struct {
		name    string
		as      string // connection token sub ("" = none)
		aor     string
		hdrs    []string
		contact string
		code    int
		check   func(t *testing.T, res *sip.Response)
	}{
		{name: "own AOR", as: "1001", aor: "1001", hdrs: []string{"Expires", "300"}, code: 200,
			check: func(t *testing.T, res *sip.Response) {
				if !strings.Contains(header(res, "Contact"), "expires=300") {
					t.Errorf("Contact %q has no expires=300", header(res, "Contact"))
				}
			}},
		{name: "no Expires gets the default", as: "1001", aor: "1001", code: 200,
			check: func(t *testing.T, res *sip.Response) {
				if !strings.Contains(header(res, "Contact"), "expires=600") {
					t.Errorf("Contact %q has no expires=600", header(res, "Contact"))
				}
			}},
		{name: "above max is lowered", as: "1001", aor: "1001", hdrs: []string{"Expires", "99999"}, code: 200,
			check: func(t *testing.T, res *sip.Response) {
				if !strings.Contains(header(res, "Contact"), "expires=3600") {
					t.Errorf("Contact %q has no expires=3600", header(res, "Contact"))
				}
			}},
		{name: "someone else's AOR", as: "1001", aor: "1002", code: 403},
		{name: "no token", as: "", aor: "1001", code: 401,
			check: func(t *testing.T, res *sip.Response) {
				if !strings.HasPrefix(header(res, "WWW-Authenticate"), "Bearer") {
					t.Errorf("WWW-Authenticate = %q", header(res, "WWW-Authenticate"))
				}
			}},
		{name: "too brief", as: "1001", aor: "1001", hdrs: []string{"Expires", "10"}, code: 423,
			check: func(t *testing.T, res *sip.Response) {
				if header(res, "Min-Expires") != "60" {
					t.Errorf("Min-Expires = %q", header(res, "Min-Expires"))
				}
			}},
		{name: "wildcard with Expires 0", as: "1001", aor: "1001", hdrs: []string{"Expires", "0"}, contact: "*", code: 200},
		{name: "wildcard with Expires 60", as: "1001", aor: "1001", hdrs: []string{"Expires", "60"}, contact: "*", code: 400},
		{name: "invalid Expires", as: "1001", aor: "1001", hdrs: []string{"Expires", "soon"}, code: 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := hub.Dial(testCtx(t), tt.as, sipclient.Options{})
			req := newReq(t, c, sip.REGISTER, tt.aor, tt.aor, tt.hdrs...)
			if tt.contact != "" {
				req.RemoveHeader("Contact")
				req.AppendHeader(sip.NewHeader("Contact", tt.contact))
				// sipgo types Contact; reparse so the wildcard is a ContactHeader.
				msg, err := sip.ParseMessage([]byte(req.String()))
				if err != nil {
					t.Fatal(err)
				}
				req = msg.(*sip.Request)
			}
			res := do(t, c, req)
			if res.StatusCode != tt.code {
				t.Fatalf("got %d %s, want %d", res.StatusCode, res.Reason, tt.code)
			}
			if tt.check != nil {
				tt.check(t, res)
			}
		})
	}
}

func TestRegister_ClosedSocketDropsBindings(t *testing.T) {
	hub := servertest.Start(t, servertest.Options{})
	c := hub.Dial(testCtx(t), "1001", sipclient.Options{})
	if res := do(t, c, newReq(t, c, sip.REGISTER, "1001", "1001")); res.StatusCode != 200 {
		t.Fatalf("REGISTER: %d", res.StatusCode)
	}
	if n := len(hub.Server.Registrar().Bindings(servertest.AOR("1001"))); n != 1 {
		t.Fatalf("bindings = %d, want 1", n)
	}
	c.Close()
	deadline := time.Now().Add(5 * time.Second)
	for len(hub.Server.Registrar().Bindings(servertest.AOR("1001"))) != 0 {
		if time.Now().After(deadline) {
			t.Fatal("binding still there after the socket closed")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestSIPBearer_OnRequestAuthenticatesAndBadOneIs401(t *testing.T) {
	hub := servertest.Start(t, servertest.Options{})
	c := hub.Dial(testCtx(t), "", sipclient.Options{})
	req := newReq(t, c, sip.REGISTER, "1001", "1001", "Authorization", "Bearer "+hub.Token("1001", nil))
	if res := do(t, c, req); res.StatusCode != 200 {
		t.Fatalf("REGISTER with Bearer: %d", res.StatusCode)
	}
	req = newReq(t, c, sip.REGISTER, "1001", "1001", "Authorization", "Bearer not.a.token")
	res := do(t, c, req)
	if res.StatusCode != 401 || !strings.Contains(header(res, "WWW-Authenticate"), "invalid_token") {
		t.Fatalf("bad Bearer: %d %q", res.StatusCode, header(res, "WWW-Authenticate"))
	}
	// The connection adopted the first identity: a request without Bearer works.
	if res := do(t, c, newReq(t, c, sip.REGISTER, "1001", "1001")); res.StatusCode != 200 {
		t.Fatalf("REGISTER on authenticated connection: %d", res.StatusCode)
	}
}

func TestUpgrade_RefusesBadTokens(t *testing.T) {
	secret := make([]byte, 32)
	_, _ = rand.Read(secret)
	hub := servertest.Start(t, servertest.Options{Secret: secret, Configure: func(c *server.Config) {
		v, err := auth.NewVerifier(auth.Config{Secret: secret, Domain: servertest.Domain, Issuer: "pbx", Audience: "presencehub"})
		if err != nil {
			t.Fatal(err)
		}
		c.Verifier = v
	}})
	now := time.Now()
	good := jwt.MapClaims{"sub": "1001", "exp": now.Add(time.Hour).Unix(), "iss": "pbx", "aud": "presencehub"}
	sign := func(m jwt.SigningMethod, key any, claims jwt.MapClaims) string {
		tok, err := jwt.NewWithClaims(m, claims).SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	with := func(k string, v any) jwt.MapClaims {
		c := jwt.MapClaims{}
		for kk, vv := range good {
			c[kk] = vv
		}
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
		return c
	}
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tests := []struct {
		name  string
		token string
		want  int
	}{
		{"valid", sign(jwt.SigningMethodHS256, secret, good), 101},
		{"wrong key", sign(jwt.SigningMethodHS256, []byte("another-secret-another-secret-xx"), good), 401},
		{"alg none", sign(jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, good), 401},
		{"ES256 when HS256 is configured", sign(jwt.SigningMethodES256, ecKey, good), 401},
		{"expired", sign(jwt.SigningMethodHS256, secret, with("exp", now.Add(-time.Hour).Unix())), 401},
		{"no exp", sign(jwt.SigningMethodHS256, secret, with("exp", nil)), 401},
		{"not yet valid", sign(jwt.SigningMethodHS256, secret, with("nbf", now.Add(time.Hour).Unix())), 401},
		{"wrong issuer", sign(jwt.SigningMethodHS256, secret, with("iss", "evil")), 401},
		{"wrong audience", sign(jwt.SigningMethodHS256, secret, with("aud", "other")), 401},
		{"missing sub", sign(jwt.SigningMethodHS256, secret, with("sub", nil)), 401},
		{"garbage", "abc.def.ghi", 401},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := testCtx(t)
			conn, resp, err := websocket.Dial(ctx, hub.WS+"?access_token="+tt.token, &websocket.DialOptions{Subprotocols: []string{"sip"}})
			if conn != nil {
				conn.Close(websocket.StatusNormalClosure, "")
			}
			if resp == nil {
				t.Fatalf("no HTTP response: %v", err)
			}
			if resp.StatusCode != tt.want {
				t.Fatalf("HTTP %d, want %d (%v)", resp.StatusCode, tt.want, err)
			}
		})
	}
}

func TestUpgrade_WithoutSIPSubprotocol_Returns400(t *testing.T) {
	hub := servertest.Start(t, servertest.Options{})
	_, resp, err := websocket.Dial(testCtx(t), hub.WS, nil)
	if err == nil || resp == nil || resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("want HTTP 400, got %v %v", resp, err)
	}
}

func TestUpgrade_PublicKeyTokens(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
	pemKey := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	hub := servertest.Start(t, servertest.Options{Configure: func(c *server.Config) {
		v, err := auth.NewVerifier(auth.Config{PublicKeyPEM: pemKey, Domain: servertest.Domain})
		if err != nil {
			t.Fatal(err)
		}
		c.Verifier = v
	}})
	tok, _ := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims{"sub": "1001", "exp": time.Now().Add(time.Hour).Unix()}).SignedString(key)
	c := hub.Dial(testCtx(t), "", sipclient.Options{Token: tok})
	if res := do(t, c, newReq(t, c, sip.REGISTER, "1001", "1001")); res.StatusCode != 200 {
		t.Fatalf("REGISTER with ES256 token: %d", res.StatusCode)
	}
}

func TestBadInput_GetsErrorAndConnectionKeepsWorking(t *testing.T) {
	hub := servertest.Start(t, servertest.Options{})
	c := hub.Dial(testCtx(t), "1001", sipclient.Options{})
	tests := []struct {
		name string
		raw  string
		code int // 0: dropped
	}{
		{"garbage", "hello world", 0},
		{"no CSeq", "OPTIONS sip:hub.test SIP/2.0\r\nVia: SIP/2.0/WS x.invalid;branch=z9hG4bKa1\r\nFrom: <sip:1001@hub.test>;tag=a\r\nTo: <sip:hub.test>\r\nCall-ID: c1\r\n\r\n", 0},
		{"CSeq method mismatch", "OPTIONS sip:hub.test SIP/2.0\r\nVia: SIP/2.0/WS x.invalid;branch=z9hG4bKa2\r\nFrom: <sip:1001@hub.test>;tag=a\r\nTo: <sip:hub.test>\r\nCall-ID: c2\r\nCSeq: 1 INVITE\r\n\r\n", 400},
		{"unknown method", "MESSAGE sip:1002@hub.test SIP/2.0\r\nVia: SIP/2.0/WS x.invalid;branch=z9hG4bKa3\r\nFrom: <sip:1001@hub.test>;tag=a\r\nTo: <sip:1002@hub.test>\r\nCall-ID: c3\r\nCSeq: 1 MESSAGE\r\n\r\n", 405},
		{"NOTIFY outside any subscription", "NOTIFY sip:1002@hub.test SIP/2.0\r\nVia: SIP/2.0/WS x.invalid;branch=z9hG4bKa4\r\nFrom: <sip:1001@hub.test>;tag=a\r\nTo: <sip:1002@hub.test>\r\nCall-ID: c4\r\nCSeq: 1 NOTIFY\r\nEvent: dialog\r\n\r\n", 481},
		{"bad Content-Length", "OPTIONS sip:hub.test SIP/2.0\r\nVia: SIP/2.0/WS x.invalid;branch=z9hG4bKa5\r\nFrom: <sip:1001@hub.test>;tag=a\r\nTo: <sip:hub.test>\r\nCall-ID: c5\r\nCSeq: 1 OPTIONS\r\nContent-Length: 999\r\n\r\nshort", 400},
	}
	got := make(chan *sip.Response, 10)
	raw := hub.Dial(testCtx(t), "1001", sipclient.Options{})
	_ = raw
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msg, perr := sip.ParseMessage([]byte(tt.raw))
			if tt.code == 0 || perr != nil {
				if err := c.SendRaw([]byte(tt.raw)); err != nil {
					t.Fatal(err)
				}
				if tt.code != 0 {
					// Unparsable for us too: we only check the connection survives.
				}
			} else {
				res := do(t, c, msg.(*sip.Request))
				if res.StatusCode != tt.code || res.Reason == "" {
					t.Fatalf("got %d %q, want %d with a reason", res.StatusCode, res.Reason, tt.code)
				}
				if tt.code == 405 && !strings.Contains(header(res, "Allow"), "SUBSCRIBE") {
					t.Errorf("405 without Allow: %q", header(res, "Allow"))
				}
			}
			// The connection keeps working.
			if res := do(t, c, newReq(t, c, sip.OPTIONS, "1001", "1001")); res.StatusCode != 200 {
				t.Fatalf("OPTIONS after bad input: %d", res.StatusCode)
			}
		})
	}
	close(got)
}

func TestOversizeMessage_Closes1009(t *testing.T) {
	hub := servertest.Start(t, servertest.Options{})
	ctx := testCtx(t)
	conn, _, err := websocket.Dial(ctx, hub.WS+"?access_token="+hub.Token("1001", nil), &websocket.DialOptions{Subprotocols: []string{"sip"}})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.CloseNow()
	big := "OPTIONS sip:hub.test SIP/2.0\r\nX: " + strings.Repeat("a", 70<<10) + "\r\n\r\n"
	_ = conn.Write(ctx, websocket.MessageText, []byte(big))
	_, _, err = conn.Read(ctx)
	if websocket.CloseStatus(err) != websocket.StatusMessageTooBig {
		t.Fatalf("want close 1009, got %v", err)
	}
	// Others are unaffected.
	c := hub.Dial(ctx, "1001", sipclient.Options{})
	if res := do(t, c, newReq(t, c, sip.OPTIONS, "1001", "1001")); res.StatusCode != 200 {
		t.Fatalf("OPTIONS: %d", res.StatusCode)
	}
}

func TestTokenExpiry_ClosesConnection1008(t *testing.T) {
	hub := servertest.Start(t, servertest.Options{})
	signer := auth.Signer{Secret: hub.Secret, Domain: servertest.Domain}
	tok, err := signer.Mint("1001", 1500*time.Millisecond, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Leeway is 30 s for exp; the connection closes at the token's exp itself.
	c := hub.Dial(testCtx(t), "", sipclient.Options{Token: tok})
	select {
	case <-c.Done():
		if websocket.CloseStatus(c.Err()) != websocket.StatusPolicyViolation {
			t.Fatalf("closed with %v, want 1008", c.Err())
		}
	case <-time.After(5 * time.Second):
		t.Fatal("connection outlived its token")
	}
	_ = context.Background()
}

// A registered softphone is online: its presence is open while it has a
// binding and closed when its socket goes away.
func TestRegister_DrivesPresence(t *testing.T) {
	hub := servertest.Start(t, servertest.Options{})
	w, opts := newWatcher()
	watcher := hub.Dial(testCtx(t), "2001", opts)
	if res := do(t, watcher, subscribeReq(t, watcher, "2001", "1001", "presence")); res.StatusCode != 200 {
		t.Fatalf("SUBSCRIBE: %d", res.StatusCode)
	}
	if body := string(w.next(t).Body()); !strings.Contains(body, "<basic>closed</basic>") {
		t.Fatalf("before REGISTER: %s", body)
	}
	phone := hub.Dial(testCtx(t), "1001", sipclient.Options{})
	if res := do(t, phone, newReq(t, phone, sip.REGISTER, "1001", "1001")); res.StatusCode != 200 {
		t.Fatalf("REGISTER: %d", res.StatusCode)
	}
	if body := string(w.next(t).Body()); !strings.Contains(body, "<basic>open</basic>") {
		t.Fatalf("after REGISTER: %s", body)
	}
	// A refresh changes nothing a watcher sees.
	do(t, phone, newReq(t, phone, sip.REGISTER, "1001", "1001"))
	w.none(t, 200*time.Millisecond)
	phone.Close()
	if body := string(w.next(t).Body()); !strings.Contains(body, "<basic>closed</basic>") {
		t.Fatalf("after the socket closed: %s", body)
	}
}

// A fresh Bearer on a later request keeps the connection alive past the
// expiry of the token it was opened with (docs/protocol.md, "Identity").
func TestTokenExpiry_FreshBearerExtendsConnection(t *testing.T) {
	hub := servertest.Start(t, servertest.Options{})
	short, err := auth.Signer{Secret: hub.Secret, Domain: servertest.Domain}.Mint("1001", 1500*time.Millisecond, nil)
	if err != nil {
		t.Fatal(err)
	}
	c := hub.Dial(testCtx(t), "", sipclient.Options{Token: short})
	req := newReq(t, c, sip.REGISTER, "1001", "1001", "Authorization", "Bearer "+hub.Token("1001", nil))
	if res := do(t, c, req); res.StatusCode != 200 {
		t.Fatalf("REGISTER with a fresh Bearer: %d", res.StatusCode)
	}
	select {
	case <-c.Done():
		t.Fatalf("connection closed despite the fresh token: %v", c.Err())
	case <-time.After(2500 * time.Millisecond):
	}
	if res := do(t, c, newReq(t, c, sip.OPTIONS, "1001", "1001")); res.StatusCode != 200 {
		t.Fatalf("OPTIONS: %d", res.StatusCode)
	}
}

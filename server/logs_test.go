package server_test

import (
	"bytes"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/emiago/sipgo/sip"
	"github.com/presencehub/presencehub/internal/sipclient"
	"github.com/presencehub/presencehub/server"
	"github.com/presencehub/presencehub/server/auth"
	"github.com/presencehub/presencehub/server/servertest"
)

// lockedBuffer is a log destination shared by the hub's goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func TestLogs_DebugSessionNeverContainsTokens(t *testing.T) {
	var logs lockedBuffer
	hub := servertest.Start(t, servertest.Options{Configure: func(c *server.Config) {
		c.Logger = slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}})
	ctx := testCtx(t)
	urlToken := hub.Token("1001", nil)
	bearerToken := hub.Token("1002", nil)
	adminToken := hub.Token("ops", func(c *auth.Claims) { c.Admin = true })
	badToken := urlToken[:len(urlToken)-4] + "AAAA" // right shape, wrong signature

	// A browser-style client: token in ?access_token= on the upgrade.
	c1 := hub.Dial(ctx, "", sipclient.Options{Token: urlToken})
	if res := do(t, c1, newReq(t, c1, sip.REGISTER, "1001", "1001")); res.StatusCode != 200 {
		t.Fatalf("REGISTER: %d", res.StatusCode)
	}
	pub := &publisher{t: t, c: c1, ext: "1001", dialog: "d1"}
	pub.state("early")
	// A SIP client: token in Authorization: Bearer on the requests (RFC 8898).
	w, opts := newWatcher()
	c2 := hub.Dial(ctx, "", opts)
	req := subscribeReq(t, c2, "1002", "1001", "dialog", "Authorization", "Bearer "+bearerToken)
	if res := do(t, c2, req); res.StatusCode != 200 {
		t.Fatalf("SUBSCRIBE with Bearer: %d", res.StatusCode)
	}
	w.next(t)
	bad := newReq(t, c2, sip.PUBLISH, "1002", "1002", "Authorization", "Bearer "+badToken)
	if res := do(t, c2, bad); res.StatusCode != 401 {
		t.Fatalf("PUBLISH with a bad Bearer: %d", res.StatusCode)
	}
	if _, err := sipclient.Dial(ctx, hub.WS, sipclient.Options{Token: badToken}); err == nil {
		t.Fatal("upgrade with a bad token accepted")
	}
	// The admin API with a Bearer header.
	areq, _ := http.NewRequest("GET", hub.URL+"/api/resources?access_token="+adminToken, nil)
	areq.Header.Set("Authorization", "Bearer "+adminToken)
	if res, err := http.DefaultClient.Do(areq); err != nil || res.StatusCode != 200 {
		t.Fatalf("admin API: %v %v", res, err)
	} else {
		res.Body.Close()
	}
	c1.Close()
	c2.Close()
	hub.Close()

	out := logs.String()
	for _, want := range []string{`"msg":"sip in"`, `"msg":"sip out"`, `"msg":"websocket connected"`, "access_token=REDACTED", "SUBSCRIBE sip:1001@hub.test"} {
		if !strings.Contains(out, want) {
			t.Errorf("debug log has no %s", want)
		}
	}
	for name, tok := range map[string]string{"URL": urlToken, "Bearer": bearerToken, "admin": adminToken, "bad": badToken} {
		sig := tok[strings.LastIndexByte(tok, '.')+1:]
		if strings.Contains(out, tok) || strings.Contains(out, sig) {
			t.Errorf("the %s token appears in the log", name)
		}
	}
	if t.Failed() {
		t.Logf("log:\n%s", out)
	}
}

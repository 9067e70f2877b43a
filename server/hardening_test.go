package server_test

// Attacks on the running hub, each over real sockets, and the behaviour that
// now holds. One test per hole found; see also cmd/presencehub for the ones
// that belong to the binary (the database lock, a damaged database).

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/coder/websocket"
	"github.com/emiago/sipgo/sip"
	"github.com/golang-jwt/jwt/v5"
	"github.com/presencehub/presencehub/internal/sipclient"
	"github.com/presencehub/presencehub/server"
	"github.com/presencehub/presencehub/server/auth"
	"github.com/presencehub/presencehub/server/servertest"
)

// A token whose sub is "*" has the default publish list, its own AOR, taken
// literally: it may not PUBLISH or REGISTER anybody else's AOR.
func TestAttack_SubStarMayNotPublishOrRegisterOthers(t *testing.T) {
	hub := servertest.Start(t, servertest.Options{})
	c := hub.Dial(testCtx(t), "*", sipclient.Options{})
	for _, user := range []string{"1002", "pbx"} {
		pub := withBody(newReq(t, c, sip.PUBLISH, user, user, "Event", "dialog", "Expires", "600"),
			"application/dialog-info+xml", dialogInfo(servertest.AOR(user), "d1", "confirmed"))
		if res := do(t, c, pub); res.StatusCode != 403 {
			t.Errorf("PUBLISH %s with sub *: %d %s, want 403", user, res.StatusCode, res.Reason)
		}
		reg := newReq(t, c, sip.REGISTER, user, user, "Contact", "<sip:x@"+c.Host()+";transport=ws>", "Expires", "600")
		if res := do(t, c, reg); res.StatusCode != 403 {
			t.Errorf("REGISTER %s with sub *: %d %s, want 403", user, res.StatusCode, res.Reason)
		}
	}
	// It still watches (the default subscribe list is every user).
	sub := newReq(t, c, sip.SUBSCRIBE, "*", "1002", "Event", "dialog", "Expires", "600", "Accept", "application/dialog-info+xml")
	sub.AppendHeader(sip.NewHeader("Contact", "<sip:x@"+c.Host()+";transport=ws>"))
	if res := do(t, c, sub); res.StatusCode != 200 {
		t.Errorf("SUBSCRIBE with sub *: %d %s", res.StatusCode, res.Reason)
	}
}

// The upgrade and the connection's life agree on exp: a token whose exp has
// passed (even by less than the nbf/iat leeway) is refused at the upgrade
// with 401, never accepted and closed at once; a time claim spelt as a JSON
// string is malformed.
func TestAttack_TokenExpAgreesAtUpgradeAndIsANumber(t *testing.T) {
	hub := servertest.Start(t, servertest.Options{})
	now := time.Now()
	sign := func(claims jwt.MapClaims) string {
		tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(hub.Secret)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	tests := []struct {
		name  string
		token string
		want  int
	}{
		{"exp 10 s ago (inside the 30 s leeway)", sign(jwt.MapClaims{"sub": "1001", "exp": now.Add(-10 * time.Second).Unix()}), 401},
		{"exp as a JSON string", sign(jwt.MapClaims{"sub": "1001", "exp": fmt.Sprint(now.Add(time.Hour).Unix())}), 401},
		{"iat as a JSON string", sign(jwt.MapClaims{"sub": "1001", "exp": now.Add(time.Hour).Unix(), "iat": fmt.Sprint(now.Unix())}), 401},
		{"exp in an hour", sign(jwt.MapClaims{"sub": "1001", "exp": now.Add(time.Hour).Unix()}), 101},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := testCtx(t)
			conn, resp, err := websocket.Dial(ctx, hub.WS+"?access_token="+tt.token, &websocket.DialOptions{Subprotocols: []string{"sip"}})
			if resp == nil {
				t.Fatalf("no HTTP response: %v", err)
			}
			if resp.StatusCode != tt.want {
				t.Fatalf("HTTP %d, want %d (%v)", resp.StatusCode, tt.want, err)
			}
			if conn == nil {
				return
			}
			defer conn.Close(websocket.StatusNormalClosure, "")
			// An accepted token keeps its connection: a CRLF keepalive is answered.
			if err := conn.Write(ctx, websocket.MessageText, []byte("\r\n\r\n")); err != nil {
				t.Fatal(err)
			}
			if _, _, err := conn.Read(ctx); err != nil {
				t.Fatalf("accepted connection closed: %v", err)
			}
		})
	}
}

// limitHits is presencehub_limit_hits_total{limit=name}, scraped over HTTP.
func limitHits(t *testing.T, hub *servertest.Hub, name string) float64 {
	t.Helper()
	v, _ := sample(scrape(t, hub), "presencehub_limit_hits_total", "limit", name)
	return v
}

// getReady is /readyz's status and body.
func getReady(t *testing.T, hub *servertest.Hub) (int, string) {
	t.Helper()
	res, err := http.Get(hub.URL + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// One user at its own publication quota gets 503 + Retry-After (counted as
// a limit hit); the hub stays ready for everyone else.
func TestAttack_UserAtPublicationQuotaLeavesHubReady(t *testing.T) {
	hub := servertest.Start(t, servertest.Options{Configure: func(c *server.Config) { c.MaxPubsPerUser = 2 }})
	c := hub.Dial(testCtx(t), "pbx", sipclient.Options{Token: hub.Token("pbx", func(cl *auth.Claims) { cl.Publish = []string{"*"} })})
	for i, want := range []int{200, 200, 503, 503} {
		user := fmt.Sprint(3000 + i)
		pub := withBody(newReq(t, c, sip.PUBLISH, user, user, "Event", "dialog", "Expires", "600"),
			"application/dialog-info+xml", dialogInfo(servertest.AOR(user), "d1", "confirmed"))
		res := do(t, c, pub)
		if res.StatusCode != want {
			t.Fatalf("PUBLISH %d: %d %s, want %d", i, res.StatusCode, res.Reason, want)
		}
		if want == 503 && res.GetHeader("Retry-After") == nil {
			t.Error("503 without Retry-After")
		}
	}
	if code, body := getReady(t, hub); code != http.StatusOK {
		t.Fatalf("/readyz after a user hit its quota: %d %s", code, body)
	}
	if n := limitHits(t, hub, "publications_per_user"); n != 2 {
		t.Errorf("limit hits publications_per_user = %v, want 2", n)
	}
	// Another user publishes as before.
	other := hub.Dial(testCtx(t), "1001", sipclient.Options{})
	pub := withBody(newReq(t, other, sip.PUBLISH, "1001", "1001", "Event", "dialog", "Expires", "600"),
		"application/dialog-info+xml", dialogInfo(servertest.AOR("1001"), "d1", "early"))
	if res := do(t, other, pub); res.StatusCode != 200 {
		t.Fatalf("another user's PUBLISH: %d %s", res.StatusCode, res.Reason)
	}
}

// rawWS is a plain SIP-over-WebSocket connection for hand-made messages.
func rawWS(t *testing.T, hub *servertest.Hub, sub string) *websocket.Conn {
	t.Helper()
	conn, _, err := websocket.Dial(testCtx(t), hub.WS+"?access_token="+hub.Token(sub, nil), &websocket.DialOptions{Subprotocols: []string{"sip"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.CloseNow() })
	return conn
}

// wsExchange sends one message and returns the next one received.
func wsExchange(t *testing.T, conn *websocket.Conn, msg string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(testCtx(t), 5*time.Second)
	defer cancel()
	if err := conn.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
		t.Fatal(err)
	}
	_, data, err := conn.Read(ctx)
	if err != nil {
		t.Fatalf("no answer: %v", err)
	}
	return data
}

// Single-instance headers repeated, bytes outside a copied header's syntax
// and a missing Call-ID: each gets a 400 naming the header, matched by its
// Via branch, and nothing broken is echoed back (RFC 3261 §8.2.6.2,
// §21.4.1).
func TestAttack_DuplicateAndBrokenCopiedHeadersGet400NamingThem(t *testing.T) {
	hub := servertest.Start(t, servertest.Options{})
	conn := rawWS(t, hub, "1001")
	const (
		via  = "Via: SIP/2.0/WS x.invalid;branch=z9hG4bK%s\r\n"
		from = "From: <sip:1001@hub.test>;tag=a\r\n"
		to   = "To: <sip:1001@hub.test>\r\n"
		cid  = "Call-ID: c-%s\r\n"
		cseq = "CSeq: 1 OPTIONS\r\n"
	)
	tests := []struct {
		name, headers, reason string
	}{
		{"two Call-IDs", from + to + cid + "Call-ID: other\r\n" + cseq, "Bad Request - duplicate Call-ID header field"},
		{"compact and long Call-ID", from + to + cid + "i: other\r\n" + cseq, "Bad Request - duplicate Call-ID header field"},
		{"two CSeqs", from + to + cid + cseq + "CSeq: 2 OPTIONS\r\n", "Bad Request - duplicate CSeq header field"},
		{"two Froms", from + "From: <sip:1002@hub.test>;tag=b\r\n" + to + cid + cseq, "Bad Request - duplicate From header field"},
		{"two Tos", from + to + "t: <sip:1002@hub.test>\r\n" + cid + cseq, "Bad Request - duplicate To header field"},
		{"two Content-Lengths", from + to + cid + cseq + "Content-Length: 0\r\nl: 0\r\n", "Bad Request - duplicate Content-Length header field"},
		{"NUL in Call-ID", from + to + "Call-ID: c\x00%s\r\n" + cseq, "Bad Request - invalid Call-ID header field"},
		{"invalid UTF-8 in Call-ID", from + to + "Call-ID: c\xff\xfe%s\r\n" + cseq, "Bad Request - invalid Call-ID header field"},
		{"NUL in From", "From: \"a\x00b\" <sip:1001@hub.test>;tag=a\r\n" + to + cid + cseq, "Bad Request - invalid From header field"},
		{"invalid UTF-8 in From", "From: \"\xc3\x28\" <sip:1001@hub.test>;tag=a\r\n" + to + cid + cseq, "Bad Request - invalid From header field"},
		{"no Call-ID", from + to + cseq, "Missing Call-ID header field"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			branch := fmt.Sprintf("attack%d", i)
			hdrs := tt.headers
			if strings.Contains(hdrs, "%s") {
				hdrs = fmt.Sprintf(hdrs, branch)
			}
			msg := "OPTIONS sip:hub.test SIP/2.0\r\n" + fmt.Sprintf(via, branch) + hdrs + "\r\n"
			data := wsExchange(t, conn, msg)
			if bytes.ContainsAny(data, "\x00\xff\xfe") || !utf8.Valid(data) {
				t.Errorf("broken bytes echoed:\n%q", data)
			}
			m, err := sip.ParseMessage(data)
			if err != nil {
				t.Fatalf("unparsable answer %v:\n%q", err, data)
			}
			res, ok := m.(*sip.Response)
			if !ok {
				t.Fatalf("not a response: %q", data)
			}
			if b, _ := res.Via().Params.Get("branch"); b != "z9hG4bK"+branch {
				t.Errorf("branch %q, want z9hG4bK%s", b, branch)
			}
			if res.StatusCode != 400 || res.Reason != tt.reason {
				t.Errorf("got %d %q, want 400 %q", res.StatusCode, res.Reason, tt.reason)
			}
		})
	}
	// The connection keeps working.
	if data := wsExchange(t, conn, "OPTIONS sip:hub.test SIP/2.0\r\n"+fmt.Sprintf(via, "after")+from+to+fmt.Sprintf(cid, "after")+cseq+"\r\n"); !bytes.HasPrefix(data, []byte("SIP/2.0 200 ")) {
		t.Fatalf("OPTIONS after the attacks: %q", data)
	}
}

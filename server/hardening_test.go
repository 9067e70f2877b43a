package server_test

// Attacks on the running hub, each over real sockets, and the behaviour that
// now holds. One test per hole found; see also cmd/presencehub for the ones
// that belong to the binary (the database lock, a damaged database).

import (
	"fmt"
	"io"
	"net/http"
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

package server_test

// Attacks on the running hub, each over real sockets, and the behaviour that
// now holds. One test per hole found; see also cmd/presencehub for the ones
// that belong to the binary (the database lock, a damaged database).

import (
	"fmt"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/emiago/sipgo/sip"
	"github.com/golang-jwt/jwt/v5"
	"github.com/presencehub/presencehub/internal/sipclient"
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

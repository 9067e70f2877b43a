package server_test

// Attacks on the running hub, each over real sockets, and the behaviour that
// now holds. One test per hole found; see also cmd/presencehub for the ones
// that belong to the binary (the database lock, a damaged database).

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"runtime"
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
	"github.com/presencehub/presencehub/wsproto"
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
		{"From display name ending in an escape", "From: \\<sip:1001@hub.test>;tag=a\r\n" + to + cid + cseq, "Bad Request - invalid From header field"},
		{"To display name ending in an escape", from + "To: a\\ <sip:1001@hub.test>\r\n" + cid + cseq, "Bad Request - invalid To header field"},
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

// heapAfterGC is the live heap once garbage is collected.
func heapAfterGC() uint64 {
	var m runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// A header value above --max-header-length (a 60 KB "Event: dialog;id=…")
// gets 400 naming the header and a limit hit, and a subscription keeps its
// Event value once, not the request around it: the heap a subscription
// holds grows by about the bytes of its Event value, nothing more.
func TestAttack_LongEventHeaderRefusedAndNotKeptPerSubscription(t *testing.T) {
	hub := servertest.Start(t, servertest.Options{})
	c := hub.Dial(testCtx(t), "2001", sipclient.Options{})
	subscribe := func(to, id string) *sip.Response {
		req := newReq(t, c, sip.SUBSCRIBE, "2001", to, "Event", "dialog;id="+id, "Expires", "600", "Accept", "application/dialog-info+xml")
		return do(t, c, req)
	}
	res := subscribe("1001", strings.Repeat("x", 60<<10))
	if res.StatusCode != 400 || res.Reason != "Bad Request - header field too long: Event" {
		t.Fatalf("60 KB Event: %d %q", res.StatusCode, res.Reason)
	}
	if n := limitHits(t, hub, "header_length"); n != 1 {
		t.Errorf("limit hits header_length = %v, want 1", n)
	}
	// Folded over many short lines, the value is still one value.
	folded := newReq(t, c, sip.SUBSCRIBE, "2001", "1001", "Expires", "600")
	folded.AppendHeader(sip.NewHeader("Event", "dialog;id=a"+strings.Repeat("\r\n b", 5000)))
	if res := do(t, c, folded); res.StatusCode != 400 {
		t.Errorf("folded 10 KB Event: %d %q", res.StatusCode, res.Reason)
	}

	// Heap held per subscription: n subscriptions with short ids, then n
	// with ids just under the limit; the difference per subscription is
	// bounded by twice the extra bytes (the NOTIFY header template, and the
	// id inside it, nothing of the SUBSCRIBE).
	const n = 40
	long := strings.Repeat("y", 8000)
	measure := func(first int, id string) uint64 {
		before := heapAfterGC()
		for i := 0; i < n; i++ {
			if res := subscribe(fmt.Sprint(first+i), fmt.Sprint(i)+id); res.StatusCode != 200 {
				t.Fatalf("SUBSCRIBE: %d %s", res.StatusCode, res.Reason)
			}
		}
		time.Sleep(200 * time.Millisecond) // the first NOTIFYs answered
		after := heapAfterGC()
		if after < before {
			return 0
		}
		return (after - before) / n
	}
	short := measure(4000, "s")
	withLong := measure(5000, long)
	t.Logf("heap per subscription: %d B with a short id, %d B with an 8000 B id", short, withLong)
	if extra := int64(withLong) - int64(short); extra > 2*8000 {
		t.Errorf("an 8000 B Event id costs %d B of heap per subscription, want at most %d", extra, 2*8000)
	}
}

// Expires values past 2^63 ns or 2^64 s are clamped, never wrapped: PUBLISH,
// SUBSCRIBE and REGISTER are granted their package's maximum.
func TestAttack_HugeExpiresGrantsTheMaximum(t *testing.T) {
	hub := servertest.Start(t, servertest.Options{})
	c := hub.Dial(testCtx(t), "1001", sipclient.Options{})
	for _, huge := range []string{"9223372037", "18446744174", "99999999999999999999999999"} {
		t.Run(huge, func(t *testing.T) {
			pub := withBody(newReq(t, c, sip.PUBLISH, "1001", "1001", "Event", "dialog", "Expires", huge),
				"application/dialog-info+xml", dialogInfo(servertest.AOR("1001"), "d1", "early"))
			if res := do(t, c, pub); res.StatusCode != 200 || header(res, "Expires") != "86400" {
				t.Errorf("PUBLISH Expires %s: %d %s Expires %q, want 200 with 86400", huge, res.StatusCode, res.Reason, header(res, "Expires"))
			}
			sub := newReq(t, c, sip.SUBSCRIBE, "1001", "1002", "Event", "dialog", "Expires", huge, "Accept", "application/dialog-info+xml")
			if res := do(t, c, sub); res.StatusCode != 200 || header(res, "Expires") != "7200" {
				t.Errorf("SUBSCRIBE Expires %s: %d %s Expires %q, want 200 with 7200", huge, res.StatusCode, res.Reason, header(res, "Expires"))
			}
			reg := newReq(t, c, sip.REGISTER, "1001", "1001", "Contact", "<sip:x@"+c.Host()+";transport=ws>", "Expires", huge)
			if res := do(t, c, reg); res.StatusCode != 200 || header(res, "Expires") != "3600" {
				t.Errorf("REGISTER Expires %s: %d %s Expires %q, want 200 with 3600", huge, res.StatusCode, res.Reason, header(res, "Expires"))
			}
		})
	}
}

// REGISTER bindings of one AOR are bounded: above --max-bindings-per-aor a
// REGISTER gets 503 + Retry-After (a limit hit) and changes nothing; the
// 200 stays small; refreshing an existing binding still works.
func TestAttack_BindingsPerAORBounded(t *testing.T) {
	hub := servertest.Start(t, servertest.Options{Configure: func(c *server.Config) { c.Register.MaxPerAOR = 5 }})
	c := hub.Dial(testCtx(t), "1001", sipclient.Options{})
	register := func(contacts ...string) *sip.Response {
		req := newReq(t, c, sip.REGISTER, "1001", "1001", "Expires", "600")
		req.RemoveHeader("Contact") // the client's own, random one
		for _, ct := range contacts {
			req.AppendHeader(sip.NewHeader("Contact", "<sip:"+ct+"@"+c.Host()+";transport=ws>"))
		}
		return do(t, c, req)
	}
	for i := 0; i < 5; i++ {
		if res := register(fmt.Sprint("c", i)); res.StatusCode != 200 {
			t.Fatalf("binding %d: %d %s", i, res.StatusCode, res.Reason)
		}
	}
	res := register("c5")
	if res.StatusCode != 503 || res.Reason != "Service Unavailable - too many bindings for this AOR" || res.GetHeader("Retry-After") == nil {
		t.Fatalf("sixth binding: %d %q Retry-After %v", res.StatusCode, res.Reason, res.GetHeader("Retry-After"))
	}
	// Twenty in one REGISTER: refused as a whole.
	many := make([]string, 20)
	for i := range many {
		many[i] = fmt.Sprint("m", i)
	}
	if res := register(many...); res.StatusCode != 503 {
		t.Fatalf("20 contacts at once: %d", res.StatusCode)
	}
	if n := len(hub.Server.Registrar().Bindings(servertest.AOR("1001"))); n != 5 {
		t.Fatalf("bindings = %d, want 5", n)
	}
	if n := limitHits(t, hub, "bindings_per_aor"); n != 2 {
		t.Errorf("limit hits bindings_per_aor = %v, want 2", n)
	}
	// A refresh of an existing binding is no new binding.
	if res := register("c0"); res.StatusCode != 200 || len(res.GetHeaders("Contact")) != 5 {
		t.Fatalf("refresh: %d with %d contacts", res.StatusCode, len(res.GetHeaders("Contact")))
	}
}

// A subscription made with a broad token is refreshed, after a reconnect,
// with a token that may no longer watch the AOR: 403, the subscription ends
// (reason rejected) and no NOTIFY of that AOR reaches the new connection.
func TestAttack_RefreshWithNarrowerTokenEndsSubscription(t *testing.T) {
	hub := servertest.Start(t, servertest.Options{Configure: func(c *server.Config) { c.RebindGrace = 500 * time.Millisecond }})
	w1, o1 := newWatcher()
	c1 := hub.Dial(testCtx(t), "2001", o1) // default subscribe ["*"]
	req := subscribeReq(t, c1, "2001", "1001", "dialog")
	res := do(t, c1, req)
	if res.StatusCode != 200 {
		t.Fatalf("SUBSCRIBE: %d", res.StatusCode)
	}
	w1.next(t)
	c1.Close()

	w2, o2 := newWatcher()
	o2.Token = hub.Token("2001", func(cl *auth.Claims) { cl.Subscribe = []string{"1002"} })
	c2 := hub.Dial(testCtx(t), "", o2)
	if r := do(t, c2, sipclient.InDialog(req, res)); r.StatusCode != 403 {
		t.Fatalf("refresh with a token that may not watch 1001: %d %s, want 403", r.StatusCode, r.Reason)
	}
	newPublisher(t, hub, "1001").state("early")
	w2.none(t, time.Second)
	waitFor(t, "the subscription to end", func() bool { return hub.Server.Notifier().Count()["dialog"] == 0 })

	// Same token, still allowed: the refresh rebinds as before.
	w3, o3 := newWatcher()
	c3 := hub.Dial(testCtx(t), "2001", o3)
	req3 := subscribeReq(t, c3, "2001", "1001", "dialog")
	res3 := do(t, c3, req3)
	w3.next(t)
	c3.Close()
	w4, o4 := newWatcher()
	c4 := hub.Dial(testCtx(t), "2001", o4)
	if r := do(t, c4, sipclient.InDialog(req3, res3)); r.StatusCode != 200 {
		t.Fatalf("refresh with the same rights: %d", r.StatusCode)
	}
	w4.next(t)
}

// closedByHub reports whether the hub closes conn (a read ends) within d,
// reading and discarding whatever it answers first.
func closedByHub(conn net.Conn, d time.Duration) bool {
	_ = conn.SetReadDeadline(time.Now().Add(d))
	_, err := io.Copy(io.Discard, conn)
	var ne net.Error
	return !(errors.As(err, &ne) && ne.Timeout())
}

// HTTP connections cannot be held for ever: idle keep-alive connections and
// trickled request bodies are closed by the idle and read timeouts, and open
// HTTP connections from one address are bounded (closed at once above it,
// counted and logged), WebSockets apart.
func TestAttack_HTTPConnectionsHeldIdleOrTrickledAreClosed(t *testing.T) {
	logs := &lockedBuffer{}
	hub := servertest.Start(t, servertest.Options{
		HTTPReadTimeout: 300 * time.Millisecond, HTTPIdleTimeout: 300 * time.Millisecond,
		Configure: func(c *server.Config) {
			c.MaxConnsPerIP = 5
			c.Logger = slog.New(slog.NewJSONHandler(logs, nil))
		}})
	dial := func() net.Conn {
		conn, err := net.Dial("tcp", hub.Addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		return conn
	}

	t.Run("idle keep-alive connection", func(t *testing.T) {
		conn := dial()
		if _, err := conn.Write([]byte("GET /healthz HTTP/1.1\r\nHost: hub\r\n\r\n")); err != nil {
			t.Fatal(err)
		}
		if !closedByHub(conn, 10*time.Second) {
			t.Fatal("an idle keep-alive connection stays open")
		}
	})
	t.Run("request body trickled", func(t *testing.T) {
		conn := dial()
		if _, err := conn.Write([]byte("PUT /api/lists/x HTTP/1.1\r\nHost: hub\r\nAuthorization: Bearer " +
			hub.Token("ops", func(c *auth.Claims) { c.Admin = true }) + "\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{")); err != nil {
			t.Fatal(err)
		}
		stop := make(chan struct{})
		defer close(stop)
		go func() { // a byte every 100 ms, until the hub gives up
			for {
				select {
				case <-stop:
					return
				case <-time.After(100 * time.Millisecond):
					if _, err := conn.Write([]byte(" ")); err != nil {
						return
					}
				}
			}
		}()
		if !closedByHub(conn, 10*time.Second) {
			t.Fatal("a trickled body holds its connection")
		}
	})
	t.Run("connections per address", func(t *testing.T) {
		// On a hub of its own, and from an address of its own (all of
		// 127.0.0.0/8 is loopback): nothing else from this address is open,
		// and the test's own metrics reads are neither shed nor counted.
		logs := &lockedBuffer{}
		hub := servertest.Start(t, servertest.Options{Configure: func(c *server.Config) {
			c.MaxConnsPerIP = 5
			c.Logger = slog.New(slog.NewJSONHandler(logs, nil))
		}})
		from := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 3)}}
		dialFrom := func() net.Conn {
			conn, err := from.Dial("tcp", hub.Addr)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { conn.Close() })
			return conn
		}
		client := &http.Client{Transport: &http.Transport{DialContext: from.DialContext}}
		defer client.CloseIdleConnections()
		// Two WebSockets do not count against the HTTP bound once upgraded.
		hub.Dial(testCtx(t), "1001", sipclient.Options{WS: wsproto.Options{HTTPClient: client}})
		hub.Dial(testCtx(t), "1002", sipclient.Options{WS: wsproto.Options{HTTPClient: client}})
		// The client has its 101 a moment before the hub takes the
		// connection over from net/http (a 1xx is written at once): the
		// WebSockets hold no HTTP slot once the hub counts them open.
		waitFor(t, "the hub to count both WebSockets", func() bool {
			var open float64
			for _, m := range scrape(t, hub)["presencehub_connections"].GetMetric() {
				open += m.GetGauge().GetValue()
			}
			return open == 2
		})
		// Five connections that send nothing are held (until the header
		// timeout); the listener accepts in arrival order, so the five take
		// the slots before any of the next three is seen, and those three
		// are closed at once.
		var held []net.Conn
		for i := 0; i < 5; i++ {
			held = append(held, dialFrom())
		}
		for i := 0; i < 3; i++ {
			if !closedByHub(dialFrom(), 10*time.Second) {
				t.Fatalf("connection %d above the bound stays open", 6+i)
			}
		}
		if n := limitHits(t, hub, "http_connections_per_ip"); n != 3 {
			t.Errorf("limit hits http_connections_per_ip = %v, want 3", n)
		}
		if !strings.Contains(logs.String(), "HTTP connections shed") {
			t.Errorf("shedding is not logged:\n%s", logs.String())
		}
		for _, c := range held {
			c.Close()
		}
		waitFor(t, "the held connections to be released", func() bool {
			res, err := client.Get(hub.URL + "/healthz")
			if err != nil {
				return false
			}
			res.Body.Close()
			return res.StatusCode == 200
		})
	})
}

// A 60 KB PIDF made of thousands of namespace declarations, each element
// with one of its own, costs what its bytes cost: the memory allocated to
// receive, parse and answer it (client included, in-process) is bounded by
// a small multiple of its size (a scope map copied per element cost
// ~1 s and hundreds of MB per PUBLISH).
func TestAttack_NamespaceDeclarationBombCostsLinear(t *testing.T) {
	hub := servertest.Start(t, servertest.Options{})
	c := hub.Dial(testCtx(t), "1001", sipclient.Options{})
	var b strings.Builder
	b.WriteString(`<?xml version="1.0"?><presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:1001@hub.test"`)
	for i := 0; b.Len() < 34<<10; i++ {
		fmt.Fprintf(&b, ` xmlns:p%d="urn:%d"`, i, i)
	}
	b.WriteString(`><tuple id="t"><status><basic>open</basic></status>`)
	for i := 0; b.Len() < 60<<10; i++ {
		fmt.Fprintf(&b, `<p0:e xmlns:q%d="urn:q"/>`, i)
	}
	b.WriteString(`</tuple></presence>`)
	body := []byte(b.String())
	publish := func() *sip.Response {
		return do(t, c, withBody(newReq(t, c, sip.PUBLISH, "1001", "1001", "Event", "presence", "Expires", "600"), "application/pidf+xml", body))
	}
	publish() // warm up
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	res := publish()
	runtime.ReadMemStats(&after)
	alloc := after.TotalAlloc - before.TotalAlloc
	t.Logf("%d B body: %d %s, %d B allocated", len(body), res.StatusCode, res.Reason, alloc)
	if res.StatusCode != 200 && res.StatusCode != 400 {
		t.Errorf("answer %d %s, want 200 or 400", res.StatusCode, res.Reason)
	}
	if limit := uint64(128 * len(body)); alloc > limit {
		t.Errorf("one PUBLISH of %d B allocated %d B, want at most %d", len(body), alloc, limit)
	}
}

package server_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/emiago/sipgo/sip"
	"github.com/presencehub/presencehub/compositor"
	"github.com/presencehub/presencehub/internal/sipclient"
	"github.com/presencehub/presencehub/server"
	"github.com/presencehub/presencehub/server/servertest"
	"github.com/presencehub/presencehub/wsproto"
)

// countingClient is an HTTP client whose connections count the bytes the
// hub sends: the WebSocket frames as they are on the wire.
func countingClient(read *atomic.Int64) *http.Client {
	d := &net.Dialer{}
	return &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return &countingConn{Conn: c, read: read}, nil
	}}}
}

type countingConn struct {
	net.Conn
	read *atomic.Int64
}

func (c *countingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.read.Add(int64(n))
	return n, err
}

// bigList publishes dialog state for n extensions from 3000 on (every
// third ringing) straight into the compositor and stores the list "big".
// It returns each extension's entity-tag.
func bigList(tb testing.TB, hub *servertest.Hub, n int) []string {
	tb.Helper()
	ctx := context.Background()
	etags := make([]string, n)
	members := make([]string, n)
	for i := range n {
		ext := strconv.Itoa(3000 + i)
		members[i] = `"` + ext + `"`
		state := "confirmed"
		if i%3 == 0 {
			state = "early"
		}
		res, err := hub.Server.Compositor().Publish(ctx, compositor.PublishRequest{Resource: servertest.AOR(ext), Event: "dialog", Expires: 3600,
			ContentType: "application/dialog-info+xml", Body: dialogInfo(servertest.AOR(ext), "call1", state), Publisher: ext})
		if err != nil {
			tb.Fatal(err)
		}
		etags[i] = res.ETag
	}
	req, _ := http.NewRequest("PUT", hub.URL+"/api/lists/big", strings.NewReader(`{"event": "dialog", "members": [`+strings.Join(members, ",")+`]}`))
	req.Header.Set("Authorization", "Bearer "+adminToken(hub))
	res, err := http.DefaultClient.Do(req)
	if err != nil || res.StatusCode != 201 {
		tb.Fatalf("PUT big: %v %v", err, res)
	}
	res.Body.Close()
	return etags
}

// deflateNegotiated performs a bare upgrade offering permessage-deflate
// and returns the extension the hub accepted ("" when none).
func deflateNegotiated(t *testing.T, hub *servertest.Hub) string {
	t.Helper()
	req, _ := http.NewRequestWithContext(testCtx(t), "GET", hub.URL+"/ws?access_token="+hub.Token("2000", nil), nil)
	for k, v := range map[string]string{"Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13",
		"Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Protocol": "sip",
		"Sec-WebSocket-Extensions": "permessage-deflate; client_max_window_bits"} {
		req.Header.Set(k, v)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != 101 {
		t.Fatalf("upgrade: %d", res.StatusCode)
	}
	return res.Header.Get("Sec-WebSocket-Extensions")
}

func TestWS_PermessageDeflateOfferedUnlessOff(t *testing.T) {
	for _, tc := range []struct{ mode, want string }{
		{"", "permessage-deflate; client_no_context_takeover; server_no_context_takeover"},
		{"context-takeover", "permessage-deflate"},
		{"off", ""},
	} {
		hub := servertest.Start(t, servertest.Options{Configure: func(c *server.Config) { c.Compression = tc.mode }})
		if got := deflateNegotiated(t, hub); got != tc.want {
			t.Errorf("--ws-compression %q: Sec-WebSocket-Extensions %q, want %q", tc.mode, got, tc.want)
		}
	}
}

// A 500-member list is one subscription on one WebSocket: the full state
// arrives in one message (compressed when the client accepts deflate), a
// change is one small partial NOTIFY.
func TestList_500MembersOverOneWebSocket(t *testing.T) {
	for _, deflate := range []bool{false, true} {
		t.Run(fmt.Sprintf("deflate=%v", deflate), func(t *testing.T) {
			hub := servertest.Start(t, servertest.Options{})
			etags := bigList(t, hub, 500)
			var wire atomic.Int64
			w, opts := newWatcher()
			opts.WS = wsproto.Options{MaxMessageSize: 1 << 20, HTTPClient: countingClient(&wire)}
			if deflate {
				opts.WS.Compression = websocket.CompressionNoContextTakeover
			}
			c := hub.Dial(testCtx(t), "2000", opts)
			before := wire.Load()
			if res := do(t, c, listSubscribe(t, c, "2000", "big", "dialog", "Supported", "eventlist")); res.StatusCode != 200 {
				t.Fatalf("SUBSCRIBE: %d", res.StatusCode)
			}
			req := w.next(t)
			n := parseRLMI(t, req)
			if len(n.resources) != 500 || countActive(n) != 500 || lamp(n.part(t, "3000")) != "early" || lamp(n.part(t, "3001")) != "confirmed" {
				t.Fatalf("full state: %d resources, %d active", len(n.resources), countActive(n))
			}
			full := wire.Load() - before
			size := len(req.Body())
			t.Logf("full state of 500: body %d bytes, %d bytes on the wire (with the 200)", size, full)
			if deflate && full > int64(size)/4 {
				t.Fatalf("deflate: %d bytes on the wire for a %d-byte body", full, size)
			}
			if !deflate && full < int64(size) {
				t.Fatalf("no deflate: %d bytes on the wire for a %d-byte body", full, size)
			}
			before = wire.Load()
			if _, err := hub.Server.Compositor().Publish(context.Background(), compositor.PublishRequest{Resource: servertest.AOR("3001"), Event: "dialog", Expires: 3600,
				IfMatch: []string{etags[1]}, ContentType: "application/dialog-info+xml", Body: dialogInfo(servertest.AOR("3001"), "call1", "terminated"), Publisher: "3001"}); err != nil {
				t.Fatal(err)
			}
			n = parseRLMI(t, w.next(t))
			if n.fullState || len(n.resources) != 1 || lamp(n.part(t, "3001")) != "idle" {
				t.Fatalf("change: %v", n.order)
			}
			time.Sleep(50 * time.Millisecond) // the client's 200 is ours; let the counter settle
			t.Logf("one change: %d bytes on the wire", wire.Load()-before)
		})
	}
}

// A client whose own message limit is below the full state closes the
// connection (1009, its choice); the hub keeps serving everyone else.
func TestList_ClientLimitBelowFullStateClosesOnlyThatClient(t *testing.T) {
	hub := servertest.Start(t, servertest.Options{})
	bigList(t, hub, 500)
	w, opts := newWatcher()
	opts.WS = wsproto.Options{MaxMessageSize: 64 << 10}
	c := hub.Dial(testCtx(t), "2000", opts)
	req := listSubscribe(t, c, "2000", "big", "dialog", "Supported", "eventlist")
	_, _ = c.Do(testCtx(t), req)
	select {
	case r := <-w.ch:
		t.Fatalf("a NOTIFY above the client's limit arrived: %d bytes", len(r.Body()))
	case <-time.After(time.Second):
	}
	other, opts2 := newWatcher()
	opts2.WS = wsproto.Options{MaxMessageSize: 1 << 20}
	c2 := hub.Dial(testCtx(t), "2001", opts2)
	if res := do(t, c2, listSubscribe(t, c2, "2001", "big", "dialog", "Supported", "eventlist")); res.StatusCode != 200 {
		t.Fatalf("another client: %d", res.StatusCode)
	}
	if n := parseRLMI(t, other.next(t)); len(n.resources) != 500 {
		t.Fatalf("another client: %d resources", len(n.resources))
	}
	_ = sip.NOTIFY
	_ = sipclient.Options{}
}

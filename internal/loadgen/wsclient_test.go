package loadgen

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/presencehub/presencehub/wsproto"
)

// echoHub is a wsproto server (the hub's transport) echoing every message.
func echoHub(t *testing.T, opts wsproto.Options) (url string, ended <-chan error) {
	t.Helper()
	errs := make(chan error, 4)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		wg.Add(1)
		defer wg.Done()
		c, err := wsproto.Accept(w, r, opts)
		if err != nil {
			return
		}
		errs <- c.Serve(ctx, func(msg []byte) { _ = c.Send(msg) })
	}))
	t.Cleanup(func() { cancel(); wg.Wait(); hs.Close() })
	return "ws" + strings.TrimPrefix(hs.URL, "http") + "/ws", errs
}

func TestWSConn_EchoBatchesBigMessagesAndPings(t *testing.T) {
	url, ended := echoHub(t, wsproto.Options{PingInterval: 250 * time.Millisecond}) // generous: CI runs under load
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := dialWS(ctx, url, sourceAddr(url, 777), 4<<10)
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan []byte, 200)
	c.serve(func(msg []byte) { got <- bytes.Clone(msg) })
	msgs := [][]byte{[]byte("hello"), bytes.Repeat([]byte("x"), 200), bytes.Repeat([]byte("y"), 60000), bytes.Repeat([]byte("z"), 10000)}
	for i := range 100 {
		c.queue([]byte("batched " + itoa(i)))
	}
	for _, m := range msgs {
		if err := c.send(m); err != nil {
			t.Fatal(err)
		}
	}
	next := func() []byte {
		select {
		case m := <-got:
			return m
		case <-time.After(5 * time.Second):
			t.Fatalf("no echo; connection ended %v: %v", c.ended(), c.err)
			return nil
		}
	}
	for i := range 100 {
		if m := next(); string(m) != "batched "+itoa(i) {
			t.Fatalf("message %d = %q", i, m)
		}
	}
	for i, want := range msgs {
		if m := next(); !bytes.Equal(m, want) {
			t.Fatalf("message %d: %d bytes, want %d", i, len(m), len(want))
		}
	}
	time.Sleep(800 * time.Millisecond) // several server pings: unanswered ones would close it
	if c.ended() {
		t.Fatalf("connection ended: %v", c.err)
	}
	c.close()
	if err := <-ended; websocket.CloseStatus(err) != websocket.StatusNormalClosure {
		t.Errorf("server saw %v, want a normal closure", err)
	}
}

func TestWSConn_NoSIPSubprotocol_Refused(t *testing.T) {
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := websocket.Accept(w, r, nil) // negotiates no subprotocol
		if err == nil {
			ws.CloseNow()
		}
	}))
	defer hs.Close()
	_, err := dialWS(context.Background(), "ws"+strings.TrimPrefix(hs.URL, "http"), nil, 4096)
	if err == nil || !strings.Contains(err.Error(), "subprotocol") {
		t.Fatalf("err = %v, want a subprotocol error", err)
	}
	if _, err := dialWS(context.Background(), "wss://127.0.0.1:1/ws", nil, 4096); err == nil {
		t.Error("wss accepted")
	}
}

func TestMask_Involution(t *testing.T) {
	for n := range 20 {
		p := bytes.Repeat([]byte("abcdefg"), n)
		q := bytes.Clone(p)
		mask(q, 0xdeadbeef)
		if n > 0 && bytes.Equal(p, q) {
			t.Fatal("mask changed nothing")
		}
		// RFC 6455 §5.3: byte i is XORed with key byte i mod 4.
		for i := range q {
			if q[i]^p[i] != byte(uint32(0xdeadbeef)>>(8*(i%4))) {
				t.Fatalf("n=%d byte %d", n, i)
			}
		}
		mask(q, 0xdeadbeef)
		if !bytes.Equal(p, q) {
			t.Fatal("mask twice is not the identity")
		}
	}
}

func TestSourceAddr_SpreadsLoopbackOnly(t *testing.T) {
	if a := sourceAddr("ws://127.0.0.1:8080/ws", 0); a == nil || a.IP.String() != "127.1.0.1" {
		t.Errorf("socket 0 from %v", a)
	}
	if a := sourceAddr("ws://127.0.0.1:8080/ws", socketsPerAddr*300); a == nil || a.IP.String() != "127.1.1.51" {
		t.Errorf("socket %d from %v", socketsPerAddr*300, a)
	}
	for _, hub := range []string{"ws://hub.example.com/ws", "ws://[::1]:80/ws", "ws://10.0.0.1/ws"} {
		if a := sourceAddr(hub, 5); a != nil {
			t.Errorf("%s: source %v", hub, a)
		}
	}
}

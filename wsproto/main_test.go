package wsproto

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// testServer is an httptest server (127.0.0.1) whose handler Accepts and then runs handle
// (default: Serve echoing every message). Cleanup cancels the server context and waits for
// every handler.
type testServer struct {
	url    string
	hs     *httptest.Server
	cancel context.CancelFunc
	conns  chan *Conn
	errs   chan error // handle's results
}

func startServer(t testing.TB, opts Options, handle func(ctx context.Context, c *Conn) error) *testServer {
	t.Helper()
	return startServerWrapped(t, nil, opts, handle)
}

// startServerWrapped is startServer with its listener wrapped by wrap (nil: as it is).
func startServerWrapped(t testing.TB, wrap func(net.Listener) net.Listener, opts Options, handle func(ctx context.Context, c *Conn) error) *testServer {
	t.Helper()
	if handle == nil {
		handle = serveEcho
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &testServer{cancel: cancel, conns: make(chan *Conn, 16), errs: make(chan error, 16)}
	var wg sync.WaitGroup
	s.hs = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		wg.Add(1)
		defer wg.Done()
		c, err := Accept(w, r, opts)
		if err != nil {
			return
		}
		s.conns <- c
		s.errs <- handle(ctx, c)
	}))
	if wrap != nil {
		s.hs.Listener = wrap(s.hs.Listener)
	}
	s.hs.Start()
	s.url = "ws" + strings.TrimPrefix(s.hs.URL, "http")
	t.Cleanup(func() {
		cancel()
		wg.Wait()
		s.hs.Close()
	})
	return s
}

func serveEcho(ctx context.Context, c *Conn) error {
	return c.Serve(ctx, func(msg []byte) { _ = c.Send(msg) })
}

func (s *testServer) conn(t *testing.T) *Conn {
	t.Helper()
	select {
	case c := <-s.conns:
		return c
	case <-time.After(5 * time.Second):
		t.Fatal("no server connection")
		return nil
	}
}

func (s *testServer) err(t *testing.T) error {
	t.Helper()
	select {
	case err := <-s.errs:
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("server connection did not end")
		return nil
	}
}

// dialRaw opens a plain coder/websocket client offering "sip", so the server is tested
// against a client that is not ours. It is closed at cleanup.
func dialRaw(t *testing.T, url string) *websocket.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{Subprotocols: []string{"sip"}})
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { _ = ws.CloseNow() })
	return ws
}

// handshake sends a raw WebSocket upgrade request with extra headers and returns the status
// and the response headers.
func handshake(t *testing.T, s *testServer, extra map[string]string) (int, http.Header) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, s.hs.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	key := make([]byte, 16)
	_, _ = rand.Read(key)
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "websocket")
	req.Header.Set("Sec-WebSocket-Version", "13")
	req.Header.Set("Sec-WebSocket-Key", base64.StdEncoding.EncodeToString(key))
	for k, v := range extra {
		req.Header.Set(k, v)
	}
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		t.Fatalf("handshake: %v", err)
	}
	resp.Body.Close()
	return resp.StatusCode, resp.Header
}

func readCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

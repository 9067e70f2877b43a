package wsproto

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/coder/websocket"
)

func TestDial_ServerWithoutSIP_Fails(t *testing.T) {
	done := make(chan struct{})
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer close(done)
		ws, err := websocket.Accept(w, r, nil) // negotiates no subprotocol
		if err != nil {
			return
		}
		_, _, _ = ws.Read(context.Background())
		ws.CloseNow()
	}))
	defer hs.Close()
	_, err := Dial(readCtx(t), "ws"+strings.TrimPrefix(hs.URL, "http"), nil, Options{})
	if !errors.Is(err, ErrNoSubprotocol) {
		t.Fatalf("Dial err = %v, want ErrNoSubprotocol", err)
	}
	<-done
}

func TestDial_Refused_ReturnsError(t *testing.T) {
	s := startServer(t, Options{}, nil)
	h := http.Header{}
	h.Set("Origin", "https://evil.example.org")
	if _, err := Dial(readCtx(t), s.url, h, Options{}); err == nil {
		t.Fatal("Dial succeeded with a refused Origin")
	}
}

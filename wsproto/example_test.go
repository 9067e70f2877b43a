package wsproto_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/coder/websocket"
	"github.com/presencehub/presencehub/wsproto"
)

// An echo server: every SIP message a client sends comes back on the same connection.
func Example() {
	served := make(chan error, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := wsproto.Accept(w, r, wsproto.Options{}) // 400 unless "sip" is offered
		if err != nil {
			return
		}
		served <- c.Serve(context.Background(), func(msg []byte) { _ = c.Send(msg) })
	}))
	defer srv.Close()

	ctx := context.Background()
	c, err := wsproto.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http"), nil, wsproto.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	_ = c.Send([]byte("OPTIONS sip:hub.invalid SIP/2.0\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"))
	_ = c.Serve(ctx, func(msg []byte) {
		fmt.Println(strings.SplitN(string(msg), "\r\n", 2)[0])
		c.Close(websocket.StatusNormalClosure, "bye")
	})
	fmt.Println("server:", websocket.CloseStatus(<-served))
	// Output:
	// OPTIONS sip:hub.invalid SIP/2.0
	// server: StatusNormalClosure
}

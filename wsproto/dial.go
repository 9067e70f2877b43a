package wsproto

import (
	"context"
	"fmt"
	"net/http"
	"net/url"

	"github.com/coder/websocket"
)

// Dial opens a client connection to url (ws:// or wss://) offering the subprotocol "sip",
// with header added to the handshake (e.g. Authorization: Bearer). It fails when the server
// does not echo "sip". Request returns nil on a dialed Conn; RemoteIP is the URL's host.
func Dial(ctx context.Context, rawURL string, header http.Header, opts Options) (*Conn, error) {
	opts = opts.withDefaults()
	ws, _, err := websocket.Dial(ctx, rawURL, &websocket.DialOptions{
		HTTPHeader:      header,
		Subprotocols:    []string{Subprotocol},
		CompressionMode: opts.Compression,
		HTTPClient:      opts.HTTPClient,
	})
	if err != nil {
		return nil, fmt.Errorf("wsproto: dial %s: %w", rawURL, err)
	}
	if ws.Subprotocol() != Subprotocol {
		ws.Close(websocket.StatusProtocolError, `subprotocol "sip" required`)
		return nil, fmt.Errorf("wsproto: dial %s: server chose subprotocol %q: %w", rawURL, ws.Subprotocol(), ErrNoSubprotocol)
	}
	host := ""
	if u, err := url.Parse(rawURL); err == nil {
		host = u.Hostname()
	}
	return newConn(ws, host, opts), nil
}

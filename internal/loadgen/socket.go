package loadgen

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"net/url"
	"strings"
)

// dialSocket connects socket number n to hub with token (access_token,
// like browsers do); serve must follow.
func dialSocket(ctx context.Context, hub, token string, n, readBuf int) (*wsConn, error) {
	u := hub
	if token != "" {
		sep := "?"
		if strings.Contains(hub, "?") {
			sep = "&"
		}
		u = hub + sep + "access_token=" + url.QueryEscape(token)
	}
	c, err := dialWS(ctx, u, sourceAddr(hub, n), readBuf)
	if err != nil {
		return nil, fmt.Errorf("loadgen: connect %s: %w", hub, err)
	}
	return c, nil
}

// socketsPerAddr is how many generator sockets share one source address.
// The hub limits WebSocket connections per client address (256 by
// default); many users do not come from one address either.
const socketsPerAddr = 200

// sourceAddr spreads the sockets of a loopback hub over 127.0.0.0/8
// (127.1.0.1, 127.1.0.2, ...: socketsPerAddr each); nil for other hubs.
func sourceAddr(hub string, n int) *net.TCPAddr {
	u, err := url.Parse(hub)
	if err != nil {
		return nil
	}
	ip := net.ParseIP(u.Hostname())
	if ip == nil || !ip.IsLoopback() || ip.To4() == nil {
		return nil
	}
	a := n / socketsPerAddr
	return &net.TCPAddr{IP: net.IPv4(127, 1, byte(a/250), byte(a%250+1))}
}

// Read buffer sizes: a busy socket reads a whole corked batch of NOTIFYs at
// once; an idle one needs little.
const (
	busyReadBuf = 64 << 10
	idleReadBuf = 4 << 10
)

const tokenChars = "abcdefghijklmnopqrstuvwxyz0123456789"

func randToken(n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = tokenChars[rand.IntN(len(tokenChars))]
	}
	return string(b)
}

func newUA(domain, user string) ua {
	return ua{
		domain: domain,
		host:   randToken(10) + ".invalid",
		user:   user,
		tag:    randToken(10),
		branch: []byte("z9hG4bK" + randToken(8) + "-"),
	}
}

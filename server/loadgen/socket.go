package loadgen

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/url"
	"strings"
)

// dialSocket connects to hub with token (access_token, like browsers do);
// serve must follow.
func dialSocket(ctx context.Context, hub, token string, readBuf int) (*wsConn, error) {
	u := hub
	if token != "" {
		sep := "?"
		if strings.Contains(hub, "?") {
			sep = "&"
		}
		u = hub + sep + "access_token=" + url.QueryEscape(token)
	}
	c, err := dialWS(ctx, u, readBuf)
	if err != nil {
		return nil, fmt.Errorf("loadgen: connect %s: %w", hub, err)
	}
	return c, nil
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

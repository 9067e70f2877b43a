package wsproto

import (
	"context"
	"fmt"
	"time"
)

// pingLoop sends a WebSocket ping every PingInterval and closes the connection when no pong
// comes back within PingInterval (RFC 6455 §5.5.2). Pongs are read by the read loop.
func (c *Conn) pingLoop() {
	t := time.NewTicker(c.opts.PingInterval)
	defer t.Stop()
	for {
		select {
		case <-c.closing:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), c.opts.PingInterval)
		err := c.ws.Ping(ctx)
		cancel()
		if err != nil {
			c.closeWith(0, "", fmt.Errorf("%w: no pong from %s within %v: %v", ErrPingTimeout, c.remoteIP, c.opts.PingInterval, err), true)
			return
		}
	}
}

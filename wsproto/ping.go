package wsproto

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// startPinger sends a WebSocket ping every PingInterval and closes the
// connection when no pong comes back within PingInterval (RFC 6455 §5.5.2;
// pongs are read by the read loop). It runs on a timer, not a goroutine of
// its own, so an idle connection parks no extra stack; a ping in progress is
// counted in wg. stop must be called before wg.Wait.
func (c *Conn) startPinger(wg *sync.WaitGroup) (stop func()) {
	var mu sync.Mutex
	stopped := false
	var t *time.Timer
	mu.Lock() // t is read under mu by the callback
	defer mu.Unlock()
	t = time.AfterFunc(c.opts.PingInterval, func() {
		mu.Lock()
		if stopped {
			mu.Unlock()
			return
		}
		wg.Add(1)
		mu.Unlock()
		defer wg.Done()
		ctx, cancel := context.WithTimeout(context.Background(), c.opts.PingInterval)
		err := c.ws.Ping(ctx)
		cancel()
		if err != nil {
			c.closeWith(0, "", fmt.Errorf("%w: no pong from %s within %v: %v", ErrPingTimeout, c.remoteIP, c.opts.PingInterval, err), true)
			return
		}
		mu.Lock()
		if !stopped {
			t.Reset(c.opts.PingInterval)
		}
		mu.Unlock()
	})
	return func() {
		mu.Lock()
		stopped = true
		t.Stop()
		mu.Unlock()
	}
}

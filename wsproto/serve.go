package wsproto

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/coder/websocket"
)

// Serve runs the read loop, the single writer and the pinger until the connection ends or
// ctx ends (then it closes with 1001), and returns why it ended: errors.Is works with
// ErrClosed (Close was called), ErrSlowConsumer, ErrPingTimeout, ErrWriteTimeout,
// websocket.ErrMessageTooBig and ctx's error, and websocket.CloseStatus gives the close code
// sent or received when there was a close handshake. onMessage is called
// sequentially from the read goroutine with one whole SIP message per call (text or binary
// frame); the slice is owned by the callee. CRLF keepalives are handled here and not passed
// on. When Serve returns, every goroutine it started has ended and Done is closed. A second
// call waits for the first to finish and returns the same error.
func (c *Conn) Serve(ctx context.Context, onMessage func(msg []byte)) error {
	c.mu.Lock()
	owned := c.owned
	c.owned = true
	c.mu.Unlock()
	if owned {
		<-c.done
		return c.err
	}

	var wg sync.WaitGroup
	readErr := make(chan error, 1)
	wg.Go(func() { readErr <- c.readLoop(onMessage) })
	wg.Go(c.writeLoop)
	stopPing := func() {}
	if c.opts.PingInterval > 0 {
		stopPing = c.startPinger(&wg)
	}

	select {
	case <-ctx.Done():
		c.closeWith(websocket.StatusGoingAway, "going away", fmt.Errorf("wsproto: %w", context.Cause(ctx)), false)
	case <-c.closing:
	case err := <-readErr:
		if errors.Is(err, websocket.ErrMessageTooBig) {
			// coder/websocket has sent the 1009 close frame; the handshake drains the rest.
			c.closeWith(websocket.StatusMessageTooBig, "message too big", fmt.Errorf("wsproto: read: %w", err), false)
		} else {
			c.closeWith(websocket.StatusAbnormalClosure, "", fmt.Errorf("wsproto: read: %w", err), true)
		}
	}

	c.mu.Lock()
	code, reason, cause, hard := c.code, c.reason, c.cause, c.hard
	c.mu.Unlock()
	if !hard {
		_ = c.ws.Close(code, reason) // bounded by coder/websocket's 5 s write and 5 s wait
	}
	stopPing()
	_ = c.ws.CloseNow() // unblocks the reader, a stuck writer and a ping
	wg.Wait()
	c.opts.Logger.Debug("wsproto: connection ended", "remote", c.remoteIP, "cause", cause)
	c.finish(cause)
	return cause
}

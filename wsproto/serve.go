package wsproto

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/coder/websocket"
)

// Serve reads messages on the calling goroutine until the connection ends or ctx ends
// (then it closes with 1001), and returns why it ended: errors.Is works with ErrClosed
// (Close was called), ErrSlowConsumer, ErrPingTimeout, ErrWriteTimeout,
// websocket.ErrMessageTooBig and ctx's error, and websocket.CloseStatus gives the close code
// sent or received when there was a close handshake. onMessage is called sequentially, in
// order, with one whole SIP message per call (text or binary frame), from a handler
// goroutine that runs while messages wait (read.go; a few may wait, then reading stops
// until the handler catches up); the slice is owned by the callee. CRLF keepalives are
// handled here and not passed on. When Serve returns, every goroutine it started has ended,
// onMessage is not running, and Done is closed. A second call waits for the first to finish
// and returns the same error.
//
// An idle connection costs one goroutine, Serve's own, with a small stack (it only
// reads): the handler and the writer run only while messages wait (read.go, write.go),
// pings run on a timer (ping.go), the close handshake on a goroutine started when a close is
// requested (runClose), and ctx is watched with context.AfterFunc.
func (c *Conn) Serve(ctx context.Context, onMessage func(msg []byte)) error {
	c.mu.Lock()
	owned := c.owned
	c.owned = true
	if !owned {
		c.serving = true
		if c.closed { // requested before Serve (a full queue): close now
			c.closer.Add(1)
			go c.runClose(c.code, c.reason, c.hard)
		}
	}
	c.mu.Unlock()
	if owned {
		<-c.done
		return c.err
	}

	stopCtx := func() bool { return false }
	if ctx.Done() != nil { // a context that never ends costs nothing to watch
		stopCtx = context.AfterFunc(ctx, func() {
			c.closeWith(websocket.StatusGoingAway, "going away", fmt.Errorf("wsproto: %w", context.Cause(ctx)), false)
		})
	}
	stopPing := func() {}
	var pings sync.WaitGroup
	if c.opts.PingInterval > 0 {
		stopPing = c.startPinger(&pings)
	}

	err := c.readLoop(onMessage)
	// The read loop ends when the socket fails, the peer closes, or a close requested
	// meanwhile (runClose) has closed the socket under it.
	if errors.Is(err, websocket.ErrMessageTooBig) {
		// coder/websocket has sent the 1009 close frame; the handshake drains the rest.
		c.closeWith(websocket.StatusMessageTooBig, "message too big", fmt.Errorf("wsproto: read: %w", err), false)
	} else {
		c.closeWith(websocket.StatusAbnormalClosure, "", fmt.Errorf("wsproto: read: %w", err), true)
	}
	stopCtx()
	stopPing()
	c.in.wg.Wait() // onMessage is not called after Serve returns
	c.closer.Wait()
	_ = c.ws.CloseNow() // unblocks a stuck writer and a ping
	pings.Wait()
	c.qmu.Lock()
	c.stopped = true
	c.qmu.Unlock()
	c.writers.Wait()
	c.mu.Lock()
	cause := c.cause
	c.mu.Unlock()
	c.opts.Logger.Debug("wsproto: connection ended", "remote", c.remoteIP, "cause", cause)
	c.finish(cause)
	return cause
}

// runClose performs the close that was requested while Serve reads: the close handshake
// (bounded by coder/websocket's 5 s write and 5 s wait; the reader sees the peer's close
// frame), or, when hard, just dropping the socket. Either way the read loop then ends.
func (c *Conn) runClose(code websocket.StatusCode, reason string, hard bool) {
	defer c.closer.Done()
	if !hard {
		_ = c.ws.Close(code, reason)
	}
	_ = c.ws.CloseNow()
}

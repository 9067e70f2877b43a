package wsproto

import (
	"context"
	"fmt"
	"time"

	"github.com/coder/websocket"
)

// maxBatch is how many queued messages the writer sends per wake-up before looking at the
// queue through select again.
const maxBatch = 64

// writeLoop is the connection's only writer of data frames.
func (c *Conn) writeLoop() {
	// One watchdog per connection instead of a context per write: coder/websocket arms a
	// context.AfterFunc for every write given a cancellable context (allocations).
	stall := time.AfterFunc(time.Hour, func() {
		c.closeWith(websocket.StatusPolicyViolation, "write timeout",
			fmt.Errorf("%w: a write to %s took over %v", ErrWriteTimeout, c.remoteIP, c.opts.WriteTimeout), true)
	})
	stall.Stop()
	defer stall.Stop()
	for {
		var msg []byte
		select {
		case <-c.closing:
			return
		case msg = <-c.queue:
		}
		stall.Reset(c.opts.WriteTimeout)
		corked := c.cork != nil && len(c.queue) > 0 // one message alone is not worth a copy
		if corked {
			c.cork.cork()
		}
		err := c.writeBatch(msg)
		if corked {
			if uerr := c.cork.uncork(); err == nil {
				err = uerr
			}
		}
		stall.Stop()
		if err != nil {
			c.closeWith(websocket.StatusAbnormalClosure, "", fmt.Errorf("wsproto: write to %s: %w", c.remoteIP, err), true)
			return
		}
	}
}

// writeBatch writes msg and whatever else is queued, up to maxBatch messages.
func (c *Conn) writeBatch(msg []byte) error {
	for n := 1; ; n++ {
		if err := c.ws.Write(context.Background(), websocket.MessageText, msg); err != nil {
			return err
		}
		if n == maxBatch {
			return nil
		}
		select {
		case <-c.closing:
			return nil
		case msg = <-c.queue:
		default:
			return nil
		}
	}
}

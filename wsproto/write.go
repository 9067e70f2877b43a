package wsproto

import (
	"context"
	"fmt"
	"runtime"
	"time"

	"github.com/coder/websocket"
)

// writeLoop is the connection's only writer of data frames while it runs: Send starts it
// when a message is queued and none runs, and it ends when the queue is empty (an idle
// connection has no writer goroutine). Each turn takes everything queued and writes it;
// with the socket corked, a batch leaves in as few write(2) calls as fit in the cork
// buffer.
//
// A new writer yields once (runtime.Gosched) before taking its first batch: the goroutines
// that are ready to run then go first, and those that send to this connection meanwhile
// join the batch (the answers of the PUBLISHes one store commit completes leave in one
// write(2) instead of the first alone). Nobody waits on anything for it: the writer is only
// put behind what is already runnable.
func (c *Conn) writeLoop() {
	defer c.writers.Done()
	runtime.Gosched()
	// One watchdog per connection instead of a context per write: coder/websocket arms a
	// context.AfterFunc for every write given a cancellable context (allocations).
	if c.stall == nil {
		c.stall = time.AfterFunc(time.Hour, c.writeStalled)
		c.stall.Stop()
	}
	stall := c.stall
	var batch *msgQueue
	for {
		if batch = c.take(batch); batch == nil {
			return // nothing queued: the next Send starts a writer again
		}
		select {
		case <-c.closing:
			c.abandon()
			return
		default:
		}
		stall.Reset(c.opts.WriteTimeout)
		err := c.writeBatch(batch.m)
		stall.Stop()
		if err != nil {
			c.closeWith(websocket.StatusAbnormalClosure, "", fmt.Errorf("wsproto: write to %s: %w", c.remoteIP, err), true)
			c.abandon()
			return
		}
	}
}

func (c *Conn) writeStalled() {
	c.closeWith(websocket.StatusPolicyViolation, "write timeout",
		fmt.Errorf("%w: a write to %s took over %v", ErrWriteTimeout, c.remoteIP, c.opts.WriteTimeout), true)
}

// abandon ends the writer's turn for good once the connection is closing: what is queued
// is dropped and no writer starts again (Send refuses while closing).
func (c *Conn) abandon() {
	c.qmu.Lock()
	if c.queue != nil {
		clear(c.queue.m)
		c.queue = nil
	}
	c.qmu.Unlock()
}

// writeBatch writes the messages of one batch corked (server side): coder/websocket's
// per-connection write buffer is then only a few bytes (cork.go), the frames of a batch
// collect in a pooled cork buffer and leave in as few write(2) calls as fit in it. Without
// compression the frames are made here (writeFrames): a text frame from the server is its
// header and the message as it is (RFC 6455 §5.2, unmasked). Each message is recycled as
// soon as it has been copied.
func (c *Conn) writeBatch(batch []outMsg) (err error) {
	if c.raw {
		return c.cork.writeFrames(batch)
	}
	if c.cork != nil {
		c.cork.cork()
		defer func() {
			if uerr := c.cork.uncork(); err == nil {
				err = uerr
			}
		}()
	}
	for _, m := range batch {
		if err := c.ws.Write(context.Background(), websocket.MessageText, m.b); err != nil {
			return err
		}
		if m.recycle != nil {
			m.recycle(m.b)
		}
	}
	return nil
}

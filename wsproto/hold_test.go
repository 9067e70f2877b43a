package wsproto

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// writeCountingConn counts the writes to the socket (one per write(2) on a TCP conn).
type writeCountingConn struct {
	net.Conn
	writes atomic.Int64
}

func (c *writeCountingConn) Write(p []byte) (int, error) {
	c.writes.Add(1)
	return c.Conn.Write(p)
}

// countWrites makes c count its socket writes from now on.
func countWrites(c *Conn) *writeCountingConn {
	c.cork.mu.Lock()
	defer c.cork.mu.Unlock()
	cc := &writeCountingConn{Conn: c.cork.Conn}
	c.cork.Conn = cc
	return cc
}

// Messages queued with SendHeld are not written until Kick; then they leave together, in
// one write(2) as long as they fit in a cork buffer, whole and in order.
func TestSendHeld_KMessagesQueued_LeaveInOneWriteOnKick(t *testing.T) {
	const size = 400 // about a NOTIFY
	for _, tt := range []struct {
		k, writes int
	}{
		{1, 1},
		{5, 1},
		{50, 1},
		{200, 3}, // 200 × 402 bytes: three cork buffers of 32 KiB
	} {
		t.Run(fmt.Sprintf("%d messages", tt.k), func(t *testing.T) {
			s := startServer(t, Options{PingInterval: -1}, nil)
			nc := rawUpgrade(t, s)
			c := s.conn(t)
			cc := countWrites(c)
			var want [][]byte
			for i := range tt.k {
				msg := bytes.Repeat([]byte{'a' + byte(i%26)}, size)
				want = append(want, msg)
				if err := c.SendHeld(msg, nil); err != nil {
					t.Fatal(err)
				}
			}
			if n := c.QueueLen(); n != tt.k {
				t.Fatalf("%d messages queued before Kick, want %d", n, tt.k)
			}
			if n := cc.writes.Load(); n != 0 {
				t.Fatalf("%d writes before Kick, want 0", n)
			}
			c.Kick()
			_ = nc.SetReadDeadline(time.Now().Add(10 * time.Second))
			r := bufio.NewReader(nc)
			for i, w := range want {
				op, got, err := readFrame(r)
				if err != nil {
					t.Fatalf("frame %d: %v", i, err)
				}
				if op != 1 || !bytes.Equal(got, w) {
					t.Fatalf("frame %d: opcode %d, %d bytes, want a text frame of message %d", i, op, len(got), i)
				}
			}
			if n := cc.writes.Load(); n != int64(tt.writes) {
				t.Errorf("%d messages held then kicked took %d writes, want %d", tt.k, n, tt.writes)
			}
		})
	}
}

// A plain Send while held messages wait wakes the writer at once (an answer is never held
// back), and the held messages go out with it, before it.
func TestSendHeld_ThenSend_SendWritesHeldMessagesToo(t *testing.T) {
	s := startServer(t, Options{PingInterval: -1}, nil)
	nc := rawUpgrade(t, s)
	c := s.conn(t)
	cc := countWrites(c)
	for _, m := range []string{"held 1", "held 2"} {
		if err := c.SendHeld([]byte(m), nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Send([]byte("answer")); err != nil {
		t.Fatal(err)
	}
	_ = nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(nc)
	for _, want := range []string{"held 1", "held 2", "answer"} {
		_, got, err := readFrame(r)
		if err != nil {
			t.Fatalf("reading %q: %v", want, err)
		}
		if string(got) != want {
			t.Fatalf("got %q, want %q", got, want)
		}
	}
	if n := cc.writes.Load(); n != 1 {
		t.Errorf("%d writes, want 1", n)
	}
	c.Kick() // nothing left: starts no writer
	if n := c.QueueLen(); n != 0 {
		t.Errorf("%d messages left queued", n)
	}
}

// Messages held on a connection that ends before Kick are dropped by Kick (nothing stays
// queued on a finished connection), and SendHeld then refuses with ErrClosed.
func TestSendHeld_ConnectionEndedBeforeKick_QueueDropped(t *testing.T) {
	s := startServer(t, Options{PingInterval: -1}, nil)
	nc := rawUpgrade(t, s)
	c := s.conn(t)
	for range 3 {
		if err := c.SendHeld([]byte("held"), nil); err != nil {
			t.Fatal(err)
		}
	}
	nc.Close()
	select {
	case <-c.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("connection did not end")
	}
	_ = s.err(t)
	c.Kick()
	if n := c.QueueLen(); n != 0 {
		t.Errorf("%d messages still queued after Kick on an ended connection", n)
	}
	if err := c.SendHeld([]byte("late"), nil); err != ErrClosed {
		t.Errorf("SendHeld after the end: %v, want ErrClosed", err)
	}
}

// Answers that several goroutines send at once, as the PUBLISHes one store commit
// completes do (the committer wakes every waiter and each sends its answer), leave in
// fewer writes than answers: the writer the first Send starts yields before taking its
// batch, so the others, already runnable, queue first. Every answer arrives whole.
func TestSend_AnswersOfGoroutinesWokenTogether_LeaveInFewerWrites(t *testing.T) {
	const senders, rounds = 20, 20
	s := startServer(t, Options{PingInterval: -1}, nil)
	nc := rawUpgrade(t, s)
	c := s.conn(t)
	cc := countWrites(c)
	got := make(chan error, 1)
	go func() {
		_ = nc.SetReadDeadline(time.Now().Add(30 * time.Second))
		r := bufio.NewReader(nc)
		for i := range senders * rounds {
			op, msg, err := readFrame(r)
			if err == nil && (op != 1 || !bytes.HasPrefix(msg, []byte("SIP/2.0 200 OK"))) {
				err = fmt.Errorf("frame %d: opcode %d %q, want an answer", i, op, msg)
			}
			if err != nil {
				got <- err
				return
			}
		}
		got <- nil
	}()
	answer := []byte("SIP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n")
	for range rounds {
		// The committer wakes the waiters one after the other, then waits for the next
		// round, as a group-commit leader does.
		wake := make([]chan struct{}, senders)
		var sent sync.WaitGroup
		for i := range wake {
			wake[i] = make(chan struct{})
			sent.Add(1)
			go func() {
				defer sent.Done()
				<-wake[i]
				if err := c.Send(answer); err != nil {
					t.Error(err)
				}
			}()
		}
		for _, w := range wake {
			close(w)
		}
		sent.Wait()
		for c.QueueLen() > 0 {
			time.Sleep(time.Millisecond) // the round's answers are written before the next
		}
	}
	if err := <-got; err != nil {
		t.Fatal(err)
	}
	// Without the yield the writer takes the first answer alone most rounds.
	if n, limit := cc.writes.Load(), int64(senders*rounds/3); n > limit {
		t.Errorf("%d answers sent %d at a time took %d writes, want at most %d", senders*rounds, senders, n, limit)
	}
	t.Logf("%d answers, %d at a time: %d writes", senders*rounds, senders, cc.writes.Load())
}

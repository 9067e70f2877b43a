package wsproto

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
)

const options = "OPTIONS sip:hub.invalid SIP/2.0\r\nVia: SIP/2.0/WSS a.invalid;branch=z9hG4bK1\r\nMax-Forwards: 70\r\nTo: <sip:hub.invalid>\r\nFrom: <sip:1001@hub.invalid>;tag=1\r\nCall-ID: c1\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"

func TestServe_TextAndBinaryFrames_DeliveredWhole(t *testing.T) {
	got := make(chan []byte, 4)
	s := startServer(t, Options{}, func(ctx context.Context, c *Conn) error {
		return c.Serve(ctx, func(msg []byte) { got <- msg })
	})
	ws := dialRaw(t, s.url)
	tests := []struct {
		name string
		typ  websocket.MessageType
		msg  string
	}{
		{"text frame", websocket.MessageText, options},
		{"binary frame", websocket.MessageBinary, strings.Replace(options, "c1", "c2", 1)},
		{"binary frame with non-UTF-8 body", websocket.MessageBinary, "MESSAGE sip:a@b SIP/2.0\r\nContent-Length: 2\r\n\r\n\xff\xfe"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := ws.Write(readCtx(t), tt.typ, []byte(tt.msg)); err != nil {
				t.Fatal(err)
			}
			select {
			case m := <-got:
				if string(m) != tt.msg {
					t.Errorf("got %q, want %q", m, tt.msg)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("message not delivered")
			}
		})
	}
}

func TestServe_MessageSizeLimit(t *testing.T) {
	const limit = 1024
	tests := []struct {
		name      string
		size      int
		wantClose websocket.StatusCode // -1: stays open and echoes
	}{
		{"at the limit is delivered", limit, -1},
		{"one byte over closes 1009", limit + 1, websocket.StatusMessageTooBig},
		{"far over closes 1009", 10 * limit, websocket.StatusMessageTooBig},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := startServer(t, Options{MaxMessageSize: limit}, nil)
			ws := dialRaw(t, s.url)
			ctx := readCtx(t)
			msg := bytes.Repeat([]byte("a"), tt.size)
			if err := ws.Write(ctx, websocket.MessageText, msg); err != nil {
				t.Fatal(err)
			}
			_, echo, err := ws.Read(ctx)
			if tt.wantClose == -1 {
				if err != nil || len(echo) != tt.size {
					t.Fatalf("echo of %d bytes: len %d, err %v", tt.size, len(echo), err)
				}
				return
			}
			if got := websocket.CloseStatus(err); got != tt.wantClose {
				t.Fatalf("close status = %v (err %v), want %v", got, err, tt.wantClose)
			}
			if err := s.err(t); !errors.Is(err, websocket.ErrMessageTooBig) {
				t.Errorf("Serve = %v, want ErrMessageTooBig", err)
			}
		})
	}
}

func TestServe_CRLFKeepalive(t *testing.T) {
	got := make(chan []byte, 4)
	s := startServer(t, Options{}, func(ctx context.Context, c *Conn) error {
		return c.Serve(ctx, func(msg []byte) { got <- msg; _ = c.Send(msg) })
	})
	ws := dialRaw(t, s.url)
	ctx := readCtx(t)

	// RFC 5626 §4.4.1: a double-CRLF ping is answered with a single CRLF pong.
	if err := ws.Write(ctx, websocket.MessageText, []byte("\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	if _, m, err := ws.Read(ctx); err != nil || string(m) != "\r\n" {
		t.Fatalf("answer to CRLF ping = %q, %v; want CRLF", m, err)
	}
	// A lone CRLF (a pong) and the ping are not SIP messages: only the OPTIONS reaches onMessage.
	for _, m := range []string{"\r\n", options} {
		if err := ws.Write(ctx, websocket.MessageText, []byte(m)); err != nil {
			t.Fatal(err)
		}
	}
	if _, m, err := ws.Read(ctx); err != nil || string(m) != options {
		t.Fatalf("next frame = %q, %v; want the OPTIONS echo", m, err)
	}
	if m := <-got; string(m) != options {
		t.Fatalf("onMessage got %q first", m)
	}
	if len(got) != 0 {
		t.Errorf("onMessage got %d extra messages", len(got))
	}
}

func TestServe_PeerStopsAnsweringPings_Closed(t *testing.T) {
	const interval = 250 * time.Millisecond // generous: CI runs with -race under load
	s := startServer(t, Options{PingInterval: interval}, nil)

	alive := dialRaw(t, s.url)
	aliveCtx := alive.CloseRead(context.Background()) // keeps reading: answers pings
	aliveConn := s.conn(t)

	start := time.Now()
	_ = dialRaw(t, s.url) // never reads: never answers a ping
	if err := s.err(t); !errors.Is(err, ErrPingTimeout) {
		t.Fatalf("Serve = %v, want ErrPingTimeout", err)
	}
	if d := time.Since(start); d > 10*interval {
		t.Errorf("dead peer closed after %v, want about %v", d, 2*interval)
	}
	select {
	case <-aliveConn.Done():
		t.Fatal("a peer that answers pings was closed")
	case <-aliveCtx.Done():
		t.Fatal("a peer that answers pings was closed")
	default:
	}
}

func TestServe_StalledReader_Closed1008_OthersUnaffected(t *testing.T) {
	s := startServer(t, Options{WriteQueue: 8}, nil)
	stalled := dialRaw(t, s.url) // never reads until the server gave up on it
	stalledConn := s.conn(t)
	other, err := Dial(readCtx(t), s.url, nil, Options{})
	if err != nil {
		t.Fatal(err)
	}
	s.conn(t)
	echoes := make(chan []byte, 16)
	otherDone := make(chan error, 1)
	go func() { otherDone <- other.Serve(context.Background(), func(m []byte) { echoes <- m }) }()

	msg := []byte("NOTIFY sip:x@y.invalid SIP/2.0\r\n" + strings.Repeat("X-Pad: 0123456789abcdef\r\n", 40) + "\r\n")
	// Send no faster than the writer drains while the socket accepts data, so the queue
	// fills only once the client's receive buffer and the server's send buffer are full.
	var sendErr error
	sent := 0
	for ; sent < 1_000_000 && sendErr == nil; sent++ {
		for wait := 0; stalledConn.QueueLen() > 2 && wait < 20; wait++ {
			time.Sleep(time.Millisecond)
		}
		sendErr = stalledConn.Send(msg)
	}
	if !errors.Is(sendErr, ErrSlowConsumer) {
		t.Fatalf("Send = %v, want ErrSlowConsumer", sendErr)
	}
	if n := sent * len(msg); n < 256<<10 {
		t.Errorf("slow consumer after only %d bytes: the socket was not full yet", n)
	}
	t.Logf("slow consumer after %d messages (%d KiB)", sent, sent*len(msg)>>10)
	if err := stalledConn.Send(msg); !errors.Is(err, ErrClosed) {
		t.Errorf("Send after slow consumer = %v, want ErrClosed", err)
	}

	// The other connection keeps working meanwhile.
	if err := other.Send([]byte(options)); err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-echoes:
		if string(m) != options {
			t.Errorf("echo = %q", m)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("other connection got no answer")
	}

	// The stalled client finally reads: the data, then the 1008 close.
	ctx := readCtx(t)
	for {
		_, _, err := stalled.Read(ctx)
		if err != nil {
			if got := websocket.CloseStatus(err); got != websocket.StatusPolicyViolation {
				t.Fatalf("close status = %v (%v), want 1008", got, err)
			}
			break
		}
	}
	if err := s.err(t); !errors.Is(err, ErrSlowConsumer) {
		t.Errorf("Serve = %v, want ErrSlowConsumer", err)
	}
	other.Close(websocket.StatusNormalClosure, "")
	<-otherDone
}

func TestServe_WriteStalls_ClosedAfterWriteTimeout(t *testing.T) {
	const timeout = 200 * time.Millisecond
	s := startServer(t, Options{WriteQueue: 1 << 16, WriteTimeout: timeout}, nil)
	_ = dialRaw(t, s.url) // never reads
	c := s.conn(t)
	big := bytes.Repeat([]byte("a"), 32<<10)
	for range 4096 { // 128 MiB queued by reference: far more than the socket buffers hold
		if err := c.Send(big); err != nil {
			break
		}
	}
	if err := s.err(t); !errors.Is(err, ErrWriteTimeout) {
		t.Fatalf("Serve = %v, want ErrWriteTimeout", err)
	}
}

func TestServe_ContextEnds_Closes1001(t *testing.T) {
	s := startServer(t, Options{}, nil)
	ws := dialRaw(t, s.url)
	s.conn(t)
	s.cancel()
	_, _, err := ws.Read(readCtx(t))
	if got := websocket.CloseStatus(err); got != websocket.StatusGoingAway {
		t.Fatalf("close status = %v (%v), want 1001", got, err)
	}
	if err := s.err(t); !errors.Is(err, context.Canceled) {
		t.Errorf("Serve = %v, want context.Canceled", err)
	}
}

func TestServe_PeerCloses_ServeReturnsCloseStatus(t *testing.T) {
	s := startServer(t, Options{}, nil)
	ws := dialRaw(t, s.url)
	c := s.conn(t)
	_ = ws.Close(websocket.StatusNormalClosure, "bye")
	err := s.err(t)
	if got := websocket.CloseStatus(err); got != websocket.StatusNormalClosure {
		t.Errorf("Serve = %v, want close status 1000", err)
	}
	<-c.Done()
	if err := c.Send([]byte(options)); !errors.Is(err, ErrClosed) {
		t.Errorf("Send after end = %v, want ErrClosed", err)
	}
}

func TestClose_ConcurrentCalls_IdempotentAndDone(t *testing.T) {
	s := startServer(t, Options{}, nil)
	ws := dialRaw(t, s.url)
	c := s.conn(t)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() { c.Close(websocket.StatusPolicyViolation, "token expired") })
	}
	wg.Wait()
	_, _, err := ws.Read(readCtx(t))
	var ce websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != websocket.StatusPolicyViolation || ce.Reason != "token expired" {
		t.Fatalf("client got %v, want 1008 \"token expired\"", err)
	}
	select {
	case <-c.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("Done not closed")
	}
	if err := s.err(t); !errors.Is(err, ErrClosed) {
		t.Errorf("Serve = %v, want ErrClosed", err)
	}
	c.Close(websocket.StatusNormalClosure, "again") // no effect, no panic
}

func TestClose_BeforeServe_PerformsHandshake(t *testing.T) {
	s := startServer(t, Options{}, func(ctx context.Context, c *Conn) error {
		c.Close(websocket.StatusPolicyViolation, "unauthorized")
		<-c.Done()
		return c.Serve(ctx, func([]byte) {})
	})
	ws := dialRaw(t, s.url)
	_, _, err := ws.Read(readCtx(t))
	if got := websocket.CloseStatus(err); got != websocket.StatusPolicyViolation {
		t.Fatalf("close status = %v (%v), want 1008", got, err)
	}
	if err := s.err(t); !errors.Is(err, ErrClosed) {
		t.Errorf("Serve after Close = %v, want ErrClosed", err)
	}
}

func TestSend_Burst_AllDeliveredInOrder(t *testing.T) {
	const n = 5000 // several writer batches
	s := startServer(t, Options{WriteQueue: n}, nil)
	ws := dialRaw(t, s.url)
	c := s.conn(t)
	for i := range n {
		if err := c.Send(fmt.Appendf(nil, "MESSAGE %d", i)); err != nil {
			t.Fatalf("Send %d: %v", i, err)
		}
	}
	ctx := readCtx(t)
	for i := range n {
		_, m, err := ws.Read(ctx)
		if err != nil {
			t.Fatalf("read %d: %v", i, err)
		}
		if want := fmt.Sprintf("MESSAGE %d", i); string(m) != want {
			t.Fatalf("got %q, want %q", m, want)
		}
	}
}

func TestServe_Error_CarriesCloseStatus(t *testing.T) {
	tests := []struct {
		name  string
		close func(s *testServer, c *Conn, ws *websocket.Conn)
		is    error
		code  websocket.StatusCode
	}{
		{"local Close", func(_ *testServer, c *Conn, _ *websocket.Conn) {
			c.Close(websocket.StatusPolicyViolation, "no valid token")
		},
			ErrClosed, websocket.StatusPolicyViolation},
		{"context ends", func(s *testServer, _ *Conn, _ *websocket.Conn) { s.cancel() },
			context.Canceled, websocket.StatusGoingAway},
		{"oversize message", func(_ *testServer, _ *Conn, ws *websocket.Conn) {
			_ = ws.Write(context.Background(), websocket.MessageText, make([]byte, DefaultMaxMessageSize+1))
		}, websocket.ErrMessageTooBig, websocket.StatusMessageTooBig},
		{"peer closes", func(_ *testServer, _ *Conn, ws *websocket.Conn) { _ = ws.Close(websocket.StatusNormalClosure, "") },
			nil, websocket.StatusNormalClosure},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := startServer(t, Options{}, nil)
			ws := dialRaw(t, s.url)
			readDone := make(chan struct{})
			go func() { // the peer keeps reading so the close handshake completes
				defer close(readDone)
				for {
					if _, _, err := ws.Read(context.Background()); err != nil {
						return
					}
				}
			}()
			tt.close(s, s.conn(t), ws)
			err := s.err(t)
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("Serve = %v, want errors.Is %v", err, tt.is)
			}
			if got := websocket.CloseStatus(err); got != tt.code {
				t.Errorf("CloseStatus(%v) = %v, want %v", err, got, tt.code)
			}
			_ = ws.CloseNow()
			<-readDone
		})
	}
}

// An idle connection costs one goroutine, Serve's own: no writer waits
// between messages, pings run on a timer, nothing watches the context.
func TestServe_IdleConnection_OneGoroutine(t *testing.T) {
	const n = 16
	s := startServer(t, Options{PingInterval: time.Hour}, nil)
	time.Sleep(50 * time.Millisecond)
	base := runtime.NumGoroutine()
	clients := make([]*websocket.Conn, n)
	for i := range clients {
		clients[i] = dialRaw(t, s.url)
		// One message each way: the writer ran once and ended.
		if err := clients[i].Write(readCtx(t), websocket.MessageText, []byte(options)); err != nil {
			t.Fatal(err)
		}
		if _, msg, err := clients[i].Read(readCtx(t)); err != nil || string(msg) != options {
			t.Fatalf("echo: %q, %v", msg, err)
		}
		s.conn(t)
	}
	var per float64
	deadline := time.Now().Add(5 * time.Second)
	for {
		per = float64(runtime.NumGoroutine()-base) / n
		if per <= 1.0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if per > 1.0 {
		t.Fatalf("%.2f goroutines per idle connection, want 1", per)
	}
}

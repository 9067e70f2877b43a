package wsproto

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// Messages of every frame-length form (7-bit, 16-bit and 64-bit lengths, RFC 6455 §5.2),
// sent in one burst with pings from the server and the client in between, reach a client
// that is not ours whole and in order, with or without compression; each recycled message
// is handed back once, after it was written, and is never read again.
func TestSendRecycle_EveryFrameLength_WholeInOrderAndRecycledOnce(t *testing.T) {
	sizes := []int{0, 1, 125, 126, 127, 1000, 0xffff, 0x10000, 200 << 10}
	for _, tt := range []struct {
		name           string
		server, client websocket.CompressionMode
		raw            bool
	}{
		{"frames made by the writer", websocket.CompressionDisabled, websocket.CompressionDisabled, true},
		{"compression offered by the hub, not by the client: frames made by the writer", websocket.CompressionNoContextTakeover, websocket.CompressionDisabled, true},
		{"compression negotiated: frames made by coder/websocket", websocket.CompressionContextTakeover, websocket.CompressionContextTakeover, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := startServer(t, Options{Compression: tt.server, MaxMessageSize: 1 << 20}, nil)
			ctx := readCtx(t)
			ws, _, err := websocket.Dial(ctx, s.url, &websocket.DialOptions{Subprotocols: []string{"sip"}, CompressionMode: tt.client})
			if err != nil {
				t.Fatal(err)
			}
			defer ws.CloseNow()
			ws.SetReadLimit(1 << 20)
			c := s.conn(t)
			if c.raw != tt.raw {
				t.Fatalf("writer frames itself: %v, want %v", c.raw, tt.raw)
			}
			var mu sync.Mutex
			recycled := map[*byte]int{}
			recycle := func(b []byte) {
				mu.Lock()
				defer mu.Unlock()
				recycled[&b[:1][0]]++
				clear(b) // the caller reuses it: the peer must already have it
			}
			var want [][]byte
			for round := range 3 {
				for i, n := range sizes {
					msg := make([]byte, n, n+1)
					for j := range msg {
						msg[j] = 'a' + byte((i+j+round)%26)
					}
					want = append(want, bytes.Clone(msg))
					if err := c.SendRecycle(msg, recycle); err != nil {
						t.Fatal(err)
					}
				}
				pingCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
				go func() { defer cancel(); _ = ws.Ping(pingCtx) }() // answered while messages are written
			}
			for i, w := range want {
				_, got, err := ws.Read(ctx)
				if err != nil {
					t.Fatalf("read %d: %v", i, err)
				}
				if !bytes.Equal(got, w) {
					t.Fatalf("message %d: %d bytes, want %d (content differs: %v)", i, len(got), len(w), len(got) == len(w))
				}
			}
			mu.Lock()
			defer mu.Unlock()
			if len(recycled) != len(want) {
				t.Errorf("%d messages recycled, want %d", len(recycled), len(want))
			}
			for _, n := range recycled {
				if n != 1 {
					t.Fatalf("a message recycled %d times", n)
				}
			}
		})
	}
}

// A close frame ends what the connection sends: no data frame follows it on the wire,
// even when messages are queued at the moment Close is called.
func TestClose_WhileSending_NoDataAfterCloseFrame(t *testing.T) {
	for attempt := range 20 {
		s := startServer(t, Options{WriteQueue: 100000}, nil)
		nc := rawUpgrade(t, s)
		c := s.conn(t)
		sent := make(chan struct{})
		go func() {
			defer close(sent)
			for range 20000 {
				if c.Send(bytes.Repeat([]byte("x"), 300)) != nil {
					return
				}
			}
		}()
		time.Sleep(time.Duration(attempt%4) * 100 * time.Microsecond)
		c.Close(websocket.StatusPolicyViolation, "slow consumer")
		<-sent
		_ = nc.SetReadDeadline(time.Now().Add(10 * time.Second))
		r := bufio.NewReader(nc)
		closed := false
		for {
			op, payload, err := readFrame(r)
			if err != nil {
				if !closed {
					t.Fatalf("attempt %d: stream ended (%v) without a close frame", attempt, err)
				}
				break
			}
			switch {
			case closed:
				t.Fatalf("attempt %d: a frame with opcode %d after the close frame", attempt, op)
			case op == 8:
				closed = true
				if code := int(binary.BigEndian.Uint16(payload)); code != int(websocket.StatusPolicyViolation) {
					t.Fatalf("attempt %d: close code %d", attempt, code)
				}
				// Answer it, as a client does; the server then drops the socket.
				_, _ = nc.Write([]byte{0x88, 0x82, 0, 0, 0, 0, payload[0], payload[1]})
			case op != 1:
				t.Fatalf("attempt %d: unexpected opcode %d", attempt, op)
			}
		}
		nc.Close()
	}
}

// rawUpgrade performs the WebSocket handshake on a plain TCP connection, so a test reads
// exactly the frames on the wire.
func rawUpgrade(t *testing.T, s *testServer) net.Conn {
	t.Helper()
	nc, err := net.Dial("tcp", strings.TrimPrefix(s.hs.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	req := "GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n" +
		"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Protocol: sip\r\n\r\n"
	if _, err := nc.Write([]byte(req)); err != nil {
		t.Fatal(err)
	}
	// Read the response head byte by byte: nothing after it may be consumed here.
	var head []byte
	one := make([]byte, 1)
	for !bytes.HasSuffix(head, []byte("\r\n\r\n")) {
		if _, err := nc.Read(one); err != nil {
			t.Fatalf("handshake: %v after %q", err, head)
		}
		head = append(head, one[0])
	}
	if !bytes.HasPrefix(head, []byte("HTTP/1.1 101 ")) {
		t.Fatalf("handshake answered %q", head)
	}
	return nc
}

// readFrame reads one unmasked frame (a server's) and returns its opcode and payload.
func readFrame(r *bufio.Reader) (op byte, payload []byte, err error) {
	var h [2]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return 0, nil, err
	}
	n := uint64(h[1] & 0x7f)
	switch n {
	case 126:
		var l [2]byte
		if _, err := io.ReadFull(r, l[:]); err != nil {
			return 0, nil, err
		}
		n = uint64(binary.BigEndian.Uint16(l[:]))
	case 127:
		var l [8]byte
		if _, err := io.ReadFull(r, l[:]); err != nil {
			return 0, nil, err
		}
		n = binary.BigEndian.Uint64(l[:])
	}
	payload = make([]byte, n)
	_, err = io.ReadFull(r, payload)
	return h[0] & 0x0f, payload, err
}

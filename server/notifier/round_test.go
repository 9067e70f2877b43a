package notifier

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/presencehub/presencehub/compositor"
	"github.com/presencehub/presencehub/server/flow"
	"github.com/presencehub/presencehub/wsproto"
)

// writeCountingListener counts the writes to the sockets it accepts (one
// write(2) each).
type writeCountingListener struct {
	net.Listener
	writes *atomic.Int64
}

func (l writeCountingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return writeCountingConn{Conn: c, writes: l.writes}, nil
}

type writeCountingConn struct {
	net.Conn
	writes *atomic.Int64
}

func (c writeCountingConn) Write(p []byte) (int, error) {
	c.writes.Add(1)
	return c.Conn.Write(p)
}

// The NOTIFYs one round of changes makes for one socket leave in one
// write(2), over a real WebSocket connection: K resources watched on one
// connection change at once, and the K NOTIFYs arrive with one write.
func TestRun_OneRoundOfChanges_OneWritePerSocket(t *testing.T) {
	for _, k := range []int{1, 4, 18} {
		t.Run(strconv.Itoa(k)+" changes", func(t *testing.T) {
			var writes atomic.Int64
			conns := make(chan *wsproto.Conn, 1)
			srvCtx, stopSrv := context.WithCancel(context.Background())
			var served sync.WaitGroup
			hs := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				served.Add(1)
				defer served.Done()
				c, err := wsproto.Accept(w, r, wsproto.Options{PingInterval: -1})
				if err != nil {
					return
				}
				conns <- c
				_ = c.Serve(srvCtx, func([]byte) {})
			}))
			hs.Listener = writeCountingListener{Listener: hs.Listener, writes: &writes}
			hs.Start()
			defer func() { stopSrv(); served.Wait(); hs.Close() }()

			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			ws, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(hs.URL, "http"), &websocket.DialOptions{Subprotocols: []string{"sip"}})
			if err != nil {
				t.Fatal(err)
			}
			defer ws.CloseNow()
			h := newBenchHub(t)
			id := h.identity(t, "attendant")
			fl := flow.New(<-conns, id)
			// readNotifies reads n NOTIFYs (skipping responses) and answers
			// each 200, as the client's answers would be dispatched.
			readNotifies := func(n int) {
				t.Helper()
				for got := 0; got < n; {
					_, msg, err := ws.Read(ctx)
					if err != nil {
						t.Fatalf("after %d of %d NOTIFYs: %v", got, n, err)
					}
					if !bytes.HasPrefix(msg, []byte("NOTIFY ")) {
						continue
					}
					i := bytes.Index(msg, []byte(";branch="))
					j := bytes.IndexByte(msg[i:], '\r')
					b, ok := flow.ParseBranch(string(msg[i+8 : i+j]))
					if !ok {
						t.Fatalf("NOTIFY branch %q", msg[i+8:i+j])
					}
					fl.HandleAnswer(b, 200)
					got++
				}
			}
			for i := range k {
				res := "lamp" + strconv.Itoa(i)
				if code := h.n.HandleSubscribe(subscribeRequest(t, "attendant", res, res+"-sub"), fl, id); code != 200 {
					t.Fatalf("SUBSCRIBE answered %d", code)
				}
			}
			readNotifies(k) // the first NOTIFYs
			// Let the writer that wrote them end its turn: one still running
			// would take a NOTIFY of the round as soon as it is queued.
			time.Sleep(20 * time.Millisecond)

			// One round: every change is waiting when Run wakes.
			for i := range k {
				v := benchView("sip:lamp"+strconv.Itoa(i)+"@"+benchDomain, 1)
				v.Event = compositor.EventDialog
				h.n.OnChange(compositor.Change{View: v})
			}
			before := writes.Load()
			runCtx, stopRun := context.WithCancel(context.Background())
			ran := make(chan struct{})
			go func() { defer close(ran); h.n.Run(runCtx) }()
			readNotifies(k)
			stopRun()
			<-ran
			if n := writes.Load() - before; n != 1 {
				t.Errorf("%d NOTIFYs of one round took %d writes on their socket, want 1", k, n)
			}
		})
	}
}

// holdingConn is a benchConn that can hold messages (flow.Holder): it
// records how many waited at most for a Kick.
type holdingConn struct {
	benchConn
	mu      sync.Mutex
	held    [][]byte
	maxHeld int
	kicks   int
}

func (c *holdingConn) SendHeld(msg []byte, recycle func([]byte)) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.held = append(c.held, msg)
	c.maxHeld = max(c.maxHeld, len(c.held))
	if recycle != nil {
		// Sent at Kick: keep the bytes until then, recycle nothing.
		c.held[len(c.held)-1] = bytes.Clone(msg)
		recycle(msg)
	}
	return nil
}

func (c *holdingConn) Kick() {
	c.mu.Lock()
	held := c.held
	c.held = nil
	if len(held) > 0 {
		c.kicks++
	}
	c.mu.Unlock()
	for _, m := range held {
		_ = c.benchConn.Send(m)
	}
}

func (c *holdingConn) sent() int {
	c.benchConn.mu.Lock()
	defer c.benchConn.mu.Unlock()
	return len(c.benchConn.branches)
}

// A burst of changes bigger than a round is written in parts: at most 256
// NOTIFYs wait for their writer at once, so a socket's queue stays far
// below its bound, and every NOTIFY is written in the end.
// Each change here makes two NOTIFYs for the socket (two subscriptions
// per resource), so it is the count of NOTIFYs, not of changes, that ends
// a round.
func TestRun_BurstBiggerThanARound_ReleasedInParts(t *testing.T) {
	const resources, k = 350, 700
	h := newBenchHub(t)
	id := h.identity(t, "attendant")
	c := &holdingConn{}
	f := &benchFlow{fl: flow.New(c, id), conn: &c.benchConn}
	for i := range k {
		res := "lamp" + strconv.Itoa(i%resources)
		if code := h.n.HandleSubscribe(subscribeRequest(t, "attendant", res, res+"-sub"+strconv.Itoa(i)), f.fl, id); code != 200 {
			t.Fatalf("SUBSCRIBE answered %d", code)
		}
	}
	if n := f.answerAll(); n != k {
		t.Fatalf("%d first NOTIFYs, want %d", n, k)
	}
	for i := range resources {
		v := benchView("sip:lamp"+strconv.Itoa(i)+"@"+benchDomain, 1)
		h.n.OnChange(compositor.Change{View: v})
	}
	ctx, stop := context.WithCancel(context.Background())
	ran := make(chan struct{})
	go func() { defer close(ran); h.n.Run(ctx) }()
	deadline := time.Now().Add(10 * time.Second)
	for c.sent() < k && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	stop()
	<-ran
	if n := c.sent(); n != k {
		t.Fatalf("%d NOTIFYs written, want %d", n, k)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.maxHeld > maxRoundNotifies {
		t.Errorf("%d NOTIFYs held at once, want at most %d", c.maxHeld, maxRoundNotifies)
	}
	if want := (k + maxRoundNotifies - 1) / maxRoundNotifies; c.kicks < want {
		t.Errorf("%d kicks for %d NOTIFYs, want at least %d", c.kicks, k, want)
	}
}

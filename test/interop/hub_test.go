package interop

import (
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/presencehub/presencehub/compositor"
	"github.com/presencehub/presencehub/internal/siprule"
	"github.com/presencehub/presencehub/server"
	"github.com/presencehub/presencehub/server/auth"
	"github.com/presencehub/presencehub/server/registrar"
	"github.com/presencehub/presencehub/server/servertest"
)

// Short expiries so that every library refreshes within a test. The libraries' own floors
// decide the numbers: JsSIP never asks for less than 10 s on REGISTER and refreshes 5 s before
// expiry (REGISTER and SUBSCRIBE under 64 s / 140 s); SIP.js refreshes REGISTER at 99 %,
// SUBSCRIBE and PUBLISH at 90 % of the granted time. subscribeGrant leaves SIP.js 2 s between
// its refresh and the expiry: a Node process on a loaded CI machine was seen 1 s late with 10 s.
const (
	registerGrant  = 10 * time.Second
	registerGrace  = time.Second
	publishGrant   = 5 * time.Second
	subscribeGrant = 20 * time.Second
)

const (
	startup = 45 * time.Second // Node loading a library on a busy 2-core machine: seconds
	short   = 10 * time.Second // an answer or a NOTIFY: normally milliseconds
	long    = 20 * time.Second // a library's own refresh timer
)

// startHub starts a real hub (real listener, real SQLite file) with short expiries. It skips
// first when Node or the npm packages are missing, so no hub is started for nothing.
func startHub(t *testing.T) *servertest.Hub {
	t.Helper()
	Require(t)
	return servertest.Start(t, servertest.Options{Configure: func(c *server.Config) {
		c.Register = registrar.Config{Expiry: siprule.ExpiryPolicy{Default: registerGrant, Min: time.Second, Max: registerGrant}, Grace: registerGrace}
		p := siprule.ExpiryPolicy{Default: publishGrant, Min: time.Second, Max: publishGrant}
		c.PublishExpiry = map[string]siprule.ExpiryPolicy{compositor.EventDialog: p, compositor.EventPresence: p}
		s := siprule.ExpiryPolicy{Default: subscribeGrant, Min: time.Second, Max: subscribeGrant}
		c.SubscribeExpiry = map[string]siprule.ExpiryPolicy{compositor.EventDialog: s, compositor.EventPresence: s}
	}})
}

// clientArgs are the common flags for user on hub h with a valid token for that user.
func clientArgs(h *servertest.Hub, user string, extra ...string) []string {
	return withToken(h.WS, h.Token(user, nil), user, extra...)
}

func withToken(url, token, user string, extra ...string) []string {
	return append([]string{"--url", url, "--token", token, "--domain", servertest.Domain, "--user", user}, extra...)
}

// foreignToken is a well-formed token for sub signed with another key.
func foreignToken(t *testing.T, sub string) string {
	t.Helper()
	s := auth.Signer{Secret: []byte("not-the-hub-secret-not-the-hub-secret"), Domain: servertest.Domain}
	tok, err := s.Mint(sub, time.Hour, nil)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func ev(name string) func(Event) bool {
	return func(e Event) bool { return e.Ev == name }
}

func sipOut(method string) func(Event) bool {
	return func(e Event) bool { return e.Ev == "sip" && e.Dir == "out" && e.Method == method }
}

func response(method string, status int) func(Event) bool {
	return func(e Event) bool {
		return e.Ev == "sip" && e.Dir == "in" && e.CSeqMethod == method && e.Status == status
	}
}

// dropProxy forwards TCP connections to the hub and can cut them all at once, as a network
// failure or a restarting load balancer would: both ends see the socket die without a close
// handshake.
type dropProxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	wg     sync.WaitGroup
}

func startProxy(t *testing.T, target string) *dropProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &dropProxy{ln: ln, target: target, conns: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.close)
	return p
}

// WS is the proxy's WebSocket URL.
func (p *dropProxy) WS() string { return "ws://" + p.ln.Addr().String() + "/ws" }

func (p *dropProxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		u, err := net.DialTimeout("tcp", p.target, 5*time.Second)
		if err != nil {
			c.Close()
			continue
		}
		if !p.track(c, u) {
			return
		}
		p.wg.Add(2)
		go p.pipe(c, u)
		go p.pipe(u, c)
	}
}

func (p *dropProxy) track(cs ...net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.conns == nil { // closed
		for _, c := range cs {
			c.Close()
		}
		return false
	}
	for _, c := range cs {
		p.conns[c] = struct{}{}
	}
	return true
}

func (p *dropProxy) pipe(dst, src net.Conn) {
	defer p.wg.Done()
	_, _ = io.Copy(dst, src) // ends when either side is closed or cut
	dst.Close()
	src.Close()
	p.mu.Lock()
	delete(p.conns, dst)
	delete(p.conns, src)
	p.mu.Unlock()
}

// Drop cuts every connection in flight; new ones are accepted as before.
func (p *dropProxy) Drop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.SetLinger(0) // RST, not FIN: the socket dies
		}
		c.Close()
		delete(p.conns, c)
	}
}

func (p *dropProxy) close() {
	p.ln.Close()
	p.Drop()
	p.mu.Lock()
	p.conns = nil
	p.mu.Unlock()
	p.wg.Wait()
}

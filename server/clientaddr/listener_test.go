package clientaddr_test

import (
	"io"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/pires/go-proxyproto"
	"github.com/presencehub/presencehub/server/clientaddr"
	"go.uber.org/goleak"
)

// listen wraps a 127.0.0.1 listener for proxies trusted in nets.
func listen(t *testing.T, nets ...string) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := mustNew(t, prefixes(nets...)...).Listener(ln)
	t.Cleanup(func() { l.Close() })
	return l
}

func dial(t *testing.T, l net.Listener, first []byte) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if len(first) > 0 {
		if _, err := c.Write(first); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

// accept returns the next connection, failing after 5 s (half the header
// timeout a stalled peer could hold a lazy listener for).
func accept(t *testing.T, l net.Listener) net.Conn {
	t.Helper()
	type res struct {
		c   net.Conn
		err error
	}
	ch := make(chan res, 1)
	go func() { c, err := l.Accept(); ch <- res{c, err} }()
	select {
	case r := <-ch:
		if r.err != nil {
			t.Fatal(r.err)
		}
		t.Cleanup(func() { r.c.Close() })
		return r.c
	case <-time.After(clientaddr.ReadHeaderTimeout / 2):
		t.Fatal("Accept held up")
		return nil
	}
}

func header(t *testing.T, version byte, src string) []byte {
	t.Helper()
	b, err := proxyproto.HeaderProxyFromAddrs(version, net.TCPAddrFromAddrPort(netip.MustParseAddrPort(src)), &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 80}).Format()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestListener_ProxyProtocolFromTrustedPeers(t *testing.T) {
	tests := []struct {
		name     string
		trusted  string
		first    []byte
		remote   string // "" = the peer itself (127.0.0.1)
		readBack string
	}{
		{"v1 from a trusted proxy", "127.0.0.1/32", append(header(t, 1, "198.51.100.7:5000"), "OPTIONS"...), "198.51.100.7:5000", "OPTIONS"},
		{"v2 from a trusted proxy", "127.0.0.1/32", append(header(t, 2, "[2001:db8::7]:5001"), "OPTIONS"...), "[2001:db8::7]:5001", "OPTIONS"},
		{"a trusted proxy without header", "127.0.0.1/32", []byte("OPTIONS"), "", "OPTIONS"},
		{"an untrusted peer's header is data", "10.0.0.0/8", append(header(t, 1, "198.51.100.7:5000"), "OPTIONS"...), "", "PROXY TCP4 198.51.100.7"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := listen(t, tt.trusted)
			dial(t, l, tt.first)
			c := accept(t, l)
			if got := c.RemoteAddr().String(); tt.remote != "" && got != tt.remote || tt.remote == "" && netip.MustParseAddrPort(got).Addr() != netip.MustParseAddr("127.0.0.1") {
				t.Fatalf("RemoteAddr %s, want %q", got, tt.remote)
			}
			buf := make([]byte, len(tt.readBack))
			_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
			if _, err := io.ReadFull(c, buf); err != nil || string(buf) != tt.readBack {
				t.Fatalf("read %q %v, want %q", buf, err, tt.readBack)
			}
		})
	}
}

// A trusted peer that connects and sends nothing holds up neither the
// connections behind it nor Close, and leaves no goroutine behind.
func TestListener_SilentPeerHoldsUpNothing(t *testing.T) {
	defer goleak.VerifyNone(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := mustNew(t, prefixes("127.0.0.1/32")...).Listener(ln)
	silent := dial(t, l, nil)
	defer silent.Close()
	time.Sleep(50 * time.Millisecond) // the silent one is accepted first
	dial(t, l, append(header(t, 2, "198.51.100.9:7000"), 'x'))
	if c := accept(t, l); c.RemoteAddr().String() != "198.51.100.9:7000" {
		t.Fatalf("accepted %s first", c.RemoteAddr())
	}
	closed := make(chan error, 1)
	go func() { closed <- l.Close() }()
	select {
	case <-closed:
	case <-time.After(clientaddr.ReadHeaderTimeout / 2):
		t.Fatal("Close waits for the silent peer")
	}
	if _, err := l.Accept(); err == nil {
		t.Fatal("Accept after Close")
	}
}

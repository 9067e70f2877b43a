package clientaddr

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"time"

	"github.com/pires/go-proxyproto"
	"github.com/realclientip/realclientip-go"
)

// Proxies are the trusted reverse proxies. The zero value and nil trust
// nobody: Listener and Handler then change nothing.
type Proxies struct {
	nets []netip.Prefix
	xff  realclientip.RightmostTrustedRangeStrategy
}

// New trusts the proxies in nets.
func New(nets []netip.Prefix) (*Proxies, error) {
	p := &Proxies{}
	ranges := make([]net.IPNet, 0, len(nets))
	for _, n := range nets {
		n = n.Masked()
		p.nets = append(p.nets, n)
		ranges = append(ranges, net.IPNet{IP: net.IP(n.Addr().AsSlice()), Mask: net.CIDRMask(n.Bits(), n.Addr().BitLen())})
	}
	var err error
	if p.xff, err = realclientip.NewRightmostTrustedRangeStrategy("X-Forwarded-For", ranges); err != nil {
		return nil, fmt.Errorf("clientaddr: %w", err)
	}
	return p, nil
}

// Trusted reports whether ip is a trusted proxy.
func (p *Proxies) Trusted(ip netip.Addr) bool {
	if p == nil {
		return false
	}
	ip = ip.Unmap()
	for _, n := range p.nets {
		if n.Contains(ip) {
			return true
		}
	}
	return false
}

// ReadHeaderTimeout bounds how long a trusted peer's connection may take to
// send its PROXY header (or its first bytes).
const ReadHeaderTimeout = 10 * time.Second

// Listener returns ln reading the PROXY protocol (v1 and v2) on connections
// from trusted proxies: their RemoteAddr is then the client's. A trusted
// proxy may also connect without a PROXY header. Connections from other
// peers are returned as accepted.
//
// A connection from a trusted proxy is returned by Accept once its header
// is read (or ReadHeaderTimeout passed), each read in a goroutine of its
// own: a peer that connects and sends nothing never holds up the
// connections behind it, even for a server that asks RemoteAddr in its
// accept loop (sipgo's TCP transport does). Close ends every goroutine of
// the listener.
func (p *Proxies) Listener(ln net.Listener) net.Listener {
	if p == nil || len(p.nets) == 0 {
		return ln
	}
	pl := &proxyproto.Listener{
		Listener:          ln,
		ReadHeaderTimeout: ReadHeaderTimeout,
		ConnPolicy: func(o proxyproto.ConnPolicyOptions) (proxyproto.Policy, error) {
			if ip, ok := addrIP(o.Upstream); ok && p.Trusted(ip) {
				return proxyproto.USE, nil
			}
			return proxyproto.SKIP, nil
		},
	}
	l := &listener{Listener: pl, conns: make(chan accepted), done: make(chan struct{}), loopDone: make(chan struct{}),
		reading: map[net.Conn]struct{}{}}
	go l.loop()
	return l
}

type listener struct {
	net.Listener // the PROXY protocol listener
	conns        chan accepted
	done         chan struct{} // closed by Close
	loopDone     chan struct{}
	err          error // the error that ended loop (the listener closed), read after loopDone
	readers      sync.WaitGroup
	closeOnce    sync.Once
	mu           sync.Mutex
	reading      map[net.Conn]struct{} // connections whose header is being read; Close closes them
}

// accepted is a connection, or an error of the underlying Accept that the
// server may retry (too many open files): the server's backoff paces loop.
type accepted struct {
	c   net.Conn
	err error
}

func (l *listener) loop() {
	defer close(l.loopDone)
	for {
		c, err := l.Listener.Accept()
		if errors.Is(err, net.ErrClosed) {
			l.err = err
			return
		}
		if _, ok := c.(*proxyproto.Conn); err != nil || !ok { // an error, or an untrusted peer: nothing to read
			l.deliver(accepted{c, err})
			continue
		}
		l.mu.Lock()
		l.reading[c] = struct{}{}
		l.mu.Unlock()
		l.readers.Add(1)
		go func() {
			defer l.readers.Done()
			_ = c.RemoteAddr() // reads the PROXY header, bounded by ReadHeaderTimeout
			l.mu.Lock()
			delete(l.reading, c)
			l.mu.Unlock()
			l.deliver(accepted{c: c})
		}()
	}
}

func (l *listener) deliver(a accepted) {
	select {
	case l.conns <- a:
	case <-l.done:
		if a.c != nil {
			a.c.Close()
		}
	}
}

func (l *listener) Accept() (net.Conn, error) {
	select {
	case a := <-l.conns:
		return a.c, a.err
	case <-l.done:
		return nil, net.ErrClosed
	case <-l.loopDone:
		return nil, l.err
	}
}

func (l *listener) Close() error {
	var err error
	l.closeOnce.Do(func() {
		close(l.done)
		err = l.Listener.Close()
		<-l.loopDone
		l.mu.Lock()
		for c := range l.reading {
			c.Close() // ends its header read at once
		}
		l.mu.Unlock()
		l.readers.Wait()
	})
	return err
}

// Handler sets r.RemoteAddr of requests from trusted proxies to the
// client's address in X-Forwarded-For (the right-most address that is not a
// trusted proxy), keeping the port of the connection. Requests from other
// peers, and those whose header names no untrusted address, are unchanged.
func (p *Proxies) Handler(h http.Handler) http.Handler {
	if p == nil || len(p.nets) == 0 {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil && p.Trusted(ap.Addr()) {
			if c := p.xff.ClientIP(r.Header, r.RemoteAddr); c != "" {
				if ip, err := netip.ParseAddr(c); err == nil {
					r2 := r.Clone(r.Context())
					r2.RemoteAddr = netip.AddrPortFrom(ip.Unmap().WithZone(""), ap.Port()).String()
					r = r2
				}
			}
		}
		h.ServeHTTP(w, r)
	})
}

func addrIP(a net.Addr) (netip.Addr, bool) {
	switch a := a.(type) {
	case *net.TCPAddr:
		ip, ok := netip.AddrFromSlice(a.IP)
		return ip.Unmap(), ok
	case nil:
		return netip.Addr{}, false
	}
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return netip.Addr{}, false
	}
	return ap.Addr().Unmap(), true
}

package clientaddr

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
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
func (p *Proxies) Listener(ln net.Listener) net.Listener {
	if p == nil || len(p.nets) == 0 {
		return ln
	}
	return &proxyproto.Listener{
		Listener:          ln,
		ReadHeaderTimeout: ReadHeaderTimeout,
		ConnPolicy: func(o proxyproto.ConnPolicyOptions) (proxyproto.Policy, error) {
			if ip, ok := addrIP(o.Upstream); ok && p.Trusted(ip) {
				return proxyproto.USE, nil
			}
			return proxyproto.SKIP, nil
		},
	}
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

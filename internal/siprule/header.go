package siprule

import (
	"strings"

	"github.com/emiago/sipgo/sip"
)

// Product is the hub's name in its Server and User-Agent headers
// (RFC 3261 §20.35, §20.41).
const Product = "presencehub"

// SetServer adds the hub's Server header to res.
func SetServer(res *sip.Response) { res.AppendHeader(sip.NewHeader("Server", Product)) }

// Event returns the Event header of req, also in its compact form "o"
// (RFC 6665 §8.2.1): the package lower-cased without parameters, and the
// whole value trimmed (an "id" parameter is echoed in every NOTIFY).
func Event(req *sip.Request) (pkg, value string, ok bool) {
	h := Header(req, "Event")
	if h == nil {
		h = Header(req, "o")
	}
	if h == nil {
		return "", "", false
	}
	value = strings.TrimSpace(h.Value())
	return EventPackage(value), value, true
}

// EventPackage is the package of an Event value, lower-cased without
// parameters. Not a substring: the package name is kept (by a subscription,
// for its life) without the rest of the header value it was cut from.
func EventPackage(value string) string {
	pkg, _, _ := strings.Cut(value, ";")
	switch pkg = strings.ToLower(strings.TrimSpace(pkg)); pkg {
	case "dialog":
		return "dialog"
	case "presence":
		return "presence"
	}
	return strings.Clone(pkg)
}

// Header returns req's first header field named name (ASCII case ignored),
// or nil. Unlike sip.Request.GetHeader and GetHeaders, which lower-case
// every header name they compare (an allocation per name outside sipgo's
// short list) and build a slice, it allocates nothing.
func Header(req *sip.Request, name string) sip.Header {
	for _, h := range req.Headers() {
		if HeaderIs(h, name) {
			return h
		}
	}
	return nil
}

// HeaderCount is how many header fields of req are named name.
func HeaderCount(req *sip.Request, name string) int {
	n := 0
	for _, h := range req.Headers() {
		if HeaderIs(h, name) {
			n++
		}
	}
	return n
}

// HeaderIs reports whether h is named name, ignoring ASCII case (header
// names are tokens, compared case-insensitively: RFC 3261 §7.3.1).
func HeaderIs(h sip.Header, name string) bool {
	n := h.Name()
	if len(n) != len(name) {
		return false
	}
	for i := 0; i < len(n); i++ {
		if lowerASCII(n[i]) != lowerASCII(name[i]) {
			return false
		}
	}
	return true
}

func lowerASCII(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

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
	h := req.GetHeader("Event")
	if h == nil {
		h = req.GetHeader("o")
	}
	if h == nil {
		return "", "", false
	}
	value = strings.TrimSpace(h.Value())
	pkg, _, _ = strings.Cut(value, ";")
	// Not a substring: the package name is kept (by a subscription, for its
	// life) without the rest of the header value it was cut from.
	switch pkg = strings.ToLower(strings.TrimSpace(pkg)); pkg {
	case "dialog":
		return "dialog", value, true
	case "presence":
		return "presence", value, true
	}
	return strings.Clone(pkg), value, true
}

package notifier

import (
	"strconv"
	"strings"

	"github.com/presencehub/presencehub/server/flow"
)

// RLMI and multipart/related (RFC 4662 §5, RFC 2387) as the hub writes them,
// one fixed layout a plain parser can follow (docs/protocol.md, "Resource
// lists"): CRLF line ends; every part has exactly the headers
// Content-Transfer-Encoding, Content-ID and Content-Type, in that order; the
// RLMI document comes first and its Content-ID is the start parameter.

// RLMIType is the media type of the list meta-information part.
const RLMIType = "application/rlmi+xml"

func (l *listState) init(n *Notifier) {
	l.boundary = "rlmi-" + flow.NewBranch().String()[7:]
	l.cidHost = n.cfg.Domain
	l.ctype = `multipart/related;type="` + RLMIType + `";start="<` + l.boundary + "@" + l.cidHost + `>";boundary="` + l.boundary + `"`
	l.window = n.cfg.ListBatch
}

// renderLocked builds the body of the list subscription's next NOTIFY and
// marks what it carries as sent; ok is false when there is nothing to send.
// The RLMI version (per NOTIFY of the subscription) goes at VersionAt. A
// final NOTIFY (reason set) has full state with every instance terminated,
// except for a fetch, whose one NOTIFY carries the members' state.
func (l *listState) renderLocked(reason string) (Body, bool) {
	full := l.full || reason != ""
	if l.fetch {
		reason = ""
	}
	if !full && l.ndirty == 0 {
		return Body{}, false
	}
	if !full && 2*l.ndirty > len(l.members) {
		// Most of the list changed: one resync is about as big and simpler.
		full = true
	}
	size := 300 + len(l.uri)
	for _, m := range l.members {
		if full || m.dirty {
			size += 120 + len(m.aor) + len(m.name) + 2*len(l.cidHost)
			if m.rev > 0 {
				size += len(m.cur.Data) + 140 + len(l.boundary) + len(l.mprov.ContentType)
			}
		}
	}
	b := make([]byte, 0, size)
	b = append(b, "--"...)
	b = append(b, l.boundary...)
	b = append(b, "\r\nContent-Transfer-Encoding: binary\r\nContent-ID: <"...)
	b = append(b, l.boundary...)
	b = append(b, '@')
	b = append(b, l.cidHost...)
	b = append(b, ">\r\nContent-Type: "+RLMIType+";charset=\"UTF-8\"\r\n\r\n"...)
	b = append(b, `<?xml version="1.0" encoding="UTF-8"?>`+"\r\n"+`<list xmlns="urn:ietf:params:xml:ns:rlmi" uri="`...)
	b = appendEscaped(b, l.uri)
	b = append(b, `" version="`...)
	at := len(b)
	b = append(b, `" fullState="`...)
	b = strconv.AppendBool(b, full)
	b = append(b, "\">\r\n"...)
	np := l.ndirty
	if full {
		np = len(l.members)
	}
	parts := make([]*member, 0, np)
	for _, m := range l.members {
		if !full && !m.dirty {
			continue
		}
		b = append(b, `<resource uri="`...)
		b = appendEscaped(b, m.aor)
		b = append(b, `">`...)
		if m.name != "" {
			b = append(b, "<name>"...)
			b = appendEscaped(b, m.name)
			b = append(b, "</name>"...)
		}
		b = append(b, `<instance id="`...)
		b = append(b, m.inst...)
		switch {
		case reason != "":
			b = append(b, `" state="terminated" reason="`...)
			b = append(b, reason...)
		case m.rejected:
			b = append(b, `" state="terminated" reason="rejected`...)
		case m.rev == 0:
			b = append(b, `" state="pending`...)
		default:
			b = append(b, `" state="active" cid="`...)
			b = l.appendCID(b, m)
			parts = append(parts, m)
		}
		b = append(b, "\"/></resource>\r\n"...)
	}
	b = append(b, "</list>\r\n"...)
	for _, m := range parts {
		b = append(b, "--"...)
		b = append(b, l.boundary...)
		b = append(b, "\r\nContent-Transfer-Encoding: binary\r\nContent-ID: <"...)
		b = l.appendCID(b, m)
		b = append(b, ">\r\nContent-Type: "...)
		b = append(b, l.mprov.ContentType...)
		b = append(b, "\r\n\r\n"...)
		if d, vat := m.cur.Data, m.cur.VersionAt; vat >= 0 {
			b = append(b, d[:vat]...)
			b = strconv.AppendUint(b, m.ver, 10)
			b = append(b, d[vat:]...)
		} else {
			b = append(b, m.cur.Data...)
		}
		b = append(b, "\r\n"...)
		m.ver++
		m.sent = m.cur.Data
	}
	b = append(b, "--"...)
	b = append(b, l.boundary...)
	b = append(b, "--\r\n"...)
	for _, m := range l.members {
		m.dirty = false
	}
	l.ndirty = 0
	l.full = false
	return Body{Data: b, VersionAt: at}, true
}

// appendCID writes the Content-ID of m's part in this NOTIFY (without angle
// brackets): instance id, the member's document version, the hub's domain.
func (l *listState) appendCID(b []byte, m *member) []byte {
	b = append(b, m.inst...)
	b = append(b, '.')
	b = strconv.AppendUint(b, m.ver, 10)
	b = append(b, '@')
	return append(b, l.cidHost...)
}

var xmlEscaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;", "'", "&apos;")

func appendEscaped(b []byte, s string) []byte {
	if !strings.ContainsAny(s, `&<>"'`) {
		return append(b, s...)
	}
	return append(b, xmlEscaper.Replace(s)...)
}

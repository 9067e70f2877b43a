package dialoginfo

import (
	"strconv"
	"time"

	"github.com/presencehub/presencehub/compositor/internal/xmltree"
)

const header = `<?xml version="1.0" encoding="UTF-8"?>` + "\n"

// AppendXML appends the document as application/dialog-info+xml
// (RFC 4235 §4): version, state ("full" when empty) and entity, then each
// dialog with its identifiers, state and the participants when known.
func (d *Document) AppendXML(dst []byte) []byte {
	dst, _ = d.appendXML(dst, true)
	return dst
}

// AppendTemplate appends the document as AppendXML does but without the
// digits of the version attribute, and returns the offset in the result
// where they belong: `version=""` with at pointing between the quotes.
// The version is per subscription (RFC 4235 §4.1), the rest is shared by
// every subscriber of the resource: render once, insert per NOTIFY.
func (d *Document) AppendTemplate(dst []byte) (out []byte, at int) {
	return d.appendXML(dst, false)
}

// appendXML is the one dialog-info renderer: with the version digits, or
// with an empty slot whose offset it returns.
func (d *Document) appendXML(dst []byte, withVersion bool) ([]byte, int) {
	dst = append(dst, header...)
	dst = append(dst, `<dialog-info xmlns="`+NS+`" version="`...)
	at := len(dst)
	if withVersion {
		dst = strconv.AppendUint(dst, d.Version, 10)
	}
	dst = append(dst, `" state="`...)
	if d.State == "" {
		dst = append(dst, Full...)
	} else {
		dst = xmltree.AppendAttr(dst, d.State)
	}
	dst = append(dst, `" entity="`...)
	dst = xmltree.AppendAttr(dst, d.Entity)
	dst = append(dst, `">`+"\n"...)
	for i := range d.Dialogs {
		dst = d.Dialogs[i].appendXML(dst)
	}
	return append(dst, "</dialog-info>\n"...), at
}

func appendAttr(dst []byte, name, v string) []byte {
	if v == "" {
		return dst
	}
	dst = append(dst, ' ')
	dst = append(dst, name...)
	dst = append(dst, `="`...)
	dst = xmltree.AppendAttr(dst, v)
	return append(dst, '"')
}

func (d *Dialog) appendXML(dst []byte) []byte {
	dst = append(dst, `<dialog id="`...)
	dst = xmltree.AppendAttr(dst, d.ID)
	dst = append(dst, '"')
	dst = appendAttr(dst, "call-id", d.CallID)
	dst = appendAttr(dst, "local-tag", d.LocalTag)
	dst = appendAttr(dst, "remote-tag", d.RemoteTag)
	dst = appendAttr(dst, "direction", d.Direction)
	dst = append(dst, "><state"...)
	dst = appendAttr(dst, "event", d.Event)
	if d.Code != 0 {
		dst = append(dst, ` code="`...)
		dst = strconv.AppendInt(dst, int64(d.Code), 10)
		dst = append(dst, '"')
	}
	dst = append(dst, '>')
	dst = xmltree.AppendText(dst, d.State)
	dst = append(dst, "</state>"...)
	dst = appendParticipant(dst, "local", d.LocalIdentity, d.LocalDisplay, d.LocalTarget, d.LocalParams)
	dst = appendParticipant(dst, "remote", d.RemoteIdentity, d.RemoteDisplay, d.RemoteTarget, d.RemoteParams)
	if !d.Since.IsZero() {
		dst = append(dst, `<since xmlns="`+HubNS+`">`...)
		dst = appendSince(dst, d.Since)
		dst = append(dst, "</since>"...)
	}
	return append(dst, "</dialog>\n"...)
}

func appendParticipant(dst []byte, name, identity, display, target string, params []Param) []byte {
	if identity == "" && target == "" {
		return dst
	}
	dst = append(dst, '<')
	dst = append(dst, name...)
	dst = append(dst, '>')
	if identity != "" {
		dst = append(dst, "<identity"...)
		dst = appendAttr(dst, "display", display)
		dst = append(dst, '>')
		dst = xmltree.AppendText(dst, identity)
		dst = append(dst, "</identity>"...)
	}
	if target != "" {
		dst = append(dst, `<target uri="`...)
		dst = xmltree.AppendAttr(dst, target)
		if len(params) == 0 {
			dst = append(dst, `"/>`...)
		} else {
			dst = append(dst, `">`...)
			for _, p := range params {
				dst = append(dst, `<param pname="`...)
				dst = xmltree.AppendAttr(dst, p.Name)
				dst = append(dst, `" pvalue="`...)
				dst = xmltree.AppendAttr(dst, p.Value)
				dst = append(dst, `"/>`...)
			}
			dst = append(dst, "</target>"...)
		}
	}
	dst = append(dst, "</"...)
	dst = append(dst, name...)
	return append(dst, '>')
}

// appendSince appends t in SinceLayout, as t.UTC().AppendFormat would,
// without reading the layout (once per dialog of every rendering).
func appendSince(dst []byte, t time.Time) []byte {
	t = t.UTC()
	y, mo, d := t.Date()
	if y < 0 || y > 9999 {
		return t.AppendFormat(dst, SinceLayout)
	}
	h, mi, sec := t.Clock()
	ms := t.Nanosecond() / 1e6
	two := func(dst []byte, v int) []byte { return append(dst, byte('0'+v/10), byte('0'+v%10)) }
	dst = two(dst, y/100)
	dst = two(dst, y%100)
	dst = append(dst, '-')
	dst = two(dst, int(mo))
	dst = append(dst, '-')
	dst = two(dst, d)
	dst = append(dst, 'T')
	dst = two(dst, h)
	dst = append(dst, ':')
	dst = two(dst, mi)
	dst = append(dst, ':')
	dst = two(dst, sec)
	dst = append(dst, '.', byte('0'+ms/100))
	dst = two(dst, ms%100)
	return append(dst, 'Z')
}

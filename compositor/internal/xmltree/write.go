package xmltree

import (
	"unicode/utf8"
)

// AppendText appends s escaped as character data. Characters XML 1.0
// forbids are replaced by U+FFFD so the output always parses.
func AppendText(dst []byte, s string) []byte { return appendEscaped(dst, s, false) }

// AppendAttr appends s escaped for a double-quoted attribute value.
func AppendAttr(dst []byte, s string) []byte { return appendEscaped(dst, s, true) }

// escapes marks the bytes appendEscaped must look at: in text (escText)
// and in attribute values (escAttr). Every other byte is copied as it is.
const (
	escText = 1 << iota
	escAttr
)

var escapes = func() (t [256]uint8) {
	for c := 0; c < 256; c++ {
		if c < 0x20 || c >= utf8.RuneSelf || c == '&' || c == '<' || c == '>' {
			t[c] = escText | escAttr
		}
	}
	t['"'] |= escAttr
	return t
}()

func appendEscaped(dst []byte, s string, attr bool) []byte {
	mask := uint8(escText)
	if attr {
		mask = escAttr
	}
	// The usual value needs no escaping: find the first byte that may.
	first := 0
	for first < len(s) && escapes[s[first]]&mask == 0 {
		first++
	}
	if first == len(s) {
		return append(dst, s...)
	}
	last := 0
	for i := first; i < len(s); {
		c := s[i]
		if c >= 0x20 && c < utf8.RuneSelf && c != '&' && c != '<' && c != '>' && c != '"' {
			i++
			continue
		}
		var esc string
		width := 1
		switch c {
		case '&':
			esc = "&amp;"
		case '<':
			esc = "&lt;"
		case '>':
			esc = "&gt;"
		case '"':
			if !attr {
				i++
				continue
			}
			esc = "&quot;"
		case '\t':
			if !attr {
				i++
				continue
			}
			esc = "&#x9;"
		case '\n':
			if !attr {
				i++
				continue
			}
			esc = "&#xA;"
		case '\r':
			esc = "&#xD;"
		default:
			if c < 0x20 {
				esc = "\uFFFD"
				break
			}
			r, w := utf8.DecodeRuneInString(s[i:])
			width = w
			if (r == utf8.RuneError && w == 1) || !isXMLChar(r) {
				esc = "\uFFFD"
				break
			}
			i += w
			continue
		}
		dst = append(dst, s[last:i]...)
		dst = append(dst, esc...)
		i += width
		last = i
	}
	return append(dst, s[last:]...)
}

func isXMLChar(r rune) bool {
	return r == 0x09 || r == 0x0A || r == 0x0D ||
		(r >= 0x20 && r <= 0xD7FF) || (r >= 0xE000 && r <= 0xFFFD) || (r >= 0x10000 && r <= 0x10FFFF)
}

// Writer renders elements under a root whose default namespace and
// declared prefixes are known.
type Writer struct {
	// Prefixes maps namespace name to the prefix the root declared.
	Prefixes map[string]string
}

// AppendElement appends e. defaultNS is the default namespace in scope.
// Elements in a namespace with a declared prefix use it; others declare
// their namespace as the default. Attributes in an undeclared namespace
// (other than xml:) are dropped: they cannot be written without inventing
// prefixes.
func (w Writer) AppendElement(dst []byte, e *Element, defaultNS string) []byte {
	dst = append(dst, '<')
	prefix, prefixed := w.Prefixes[e.Space]
	if prefixed && e.Space != defaultNS {
		dst = append(dst, prefix...)
		dst = append(dst, ':')
	}
	dst = append(dst, e.Local...)
	if !prefixed && e.Space != defaultNS {
		dst = append(dst, ` xmlns="`...)
		dst = AppendAttr(dst, e.Space)
		dst = append(dst, '"')
		defaultNS = e.Space
	}
	for _, a := range e.Attrs {
		switch {
		case a.Space == "":
			dst = append(dst, ' ')
		case a.Space == XMLNamespace:
			dst = append(dst, " xml:"...)
		default:
			p, ok := w.Prefixes[a.Space]
			if !ok {
				continue
			}
			dst = append(dst, ' ')
			dst = append(dst, p...)
			dst = append(dst, ':')
		}
		dst = append(dst, a.Local...)
		dst = append(dst, `="`...)
		dst = AppendAttr(dst, a.Value)
		dst = append(dst, '"')
	}
	if e.Text == "" && len(e.Children) == 0 {
		return append(dst, "/>"...)
	}
	dst = append(dst, '>')
	dst = AppendText(dst, e.Text)
	for i := range e.Children {
		dst = w.AppendElement(dst, &e.Children[i], defaultNS)
	}
	dst = append(dst, "</"...)
	if prefixed && e.Space != defaultNS {
		dst = append(dst, prefix...)
		dst = append(dst, ':')
	}
	dst = append(dst, e.Local...)
	return append(dst, '>')
}

package xmltree

import (
	"errors"
	"strings"
	"sync"
	"unicode/utf8"
)

// Scanner reads a document token by token without building a tree and
// without encoding/xml: names, attributes and text are substrings of the
// source (no copy unless an entity had to be decoded).
//
// It handles the subset of XML that presence and dialog bodies are written
// in: an optional <?xml version="1.0" encoding="UTF-8"?> declaration, ASCII
// names, quoted attributes, text with the five predefined entities, and
// namespace declarations. Anything else — comments, CDATA, character
// references, DOCTYPEs, other processing instructions, a CR, non-ASCII
// names, undeclared prefixes, mismatched end tags, too many namespace
// declarations, any limit exceeded, any syntax error — makes Next return
// ErrUnsupported, and the caller parses the document with Parse instead,
// which gives the canonical answer (document or error). So a document the
// Scanner reads to the end is one Parse accepts with the same names,
// namespaces, attributes and text; the differential fuzz tests hold it to
// that.
type Scanner struct {
	src   string
	pos   int
	lim   Limits
	count int // elements started
	open  []openElem
	binds []binding // namespace declarations in scope, innermost last
	raw   []rawAttr
	buf   []byte // entity decoding

	pendingEnd bool // the last start tag was self-closing
	started    bool // the root element was seen

	// The current token.
	Kind         Kind
	Space, Local string // KindStart, KindEnd: the resolved name
	Attrs        []Attr // KindStart: attributes without the xmlns declarations (reused by Next)
	Text         string // KindText: decoded character data
}

// Kind is the kind of a token.
type Kind uint8

// Token kinds.
const (
	KindEOF Kind = iota
	KindStart
	KindEnd
	KindText
)

// ErrUnsupported means the document is outside the Scanner's subset (or not
// well-formed): parse it with Parse.
var ErrUnsupported = errors.New("xml: outside the scanner's subset")

// maxBindings bounds the namespace declarations in scope; a document with
// more goes to Parse, whose lookups do not grow with them.
const maxBindings = 32

type openElem struct {
	qname        string // as written, for the end tag
	nbinds       int    // len(binds) before the element's declarations
	space, local string
}

type binding struct{ prefix, ns string }

type rawAttr struct{ prefix, local, value string }

// Reset makes s read src under lim, keeping its buffers.
func (s *Scanner) Reset(src string, lim Limits) {
	*s = Scanner{src: src, lim: lim.norm(), open: s.open[:0], binds: s.binds[:0], raw: s.raw[:0], buf: s.buf[:0], Attrs: s.Attrs[:0]}
}

var scanners = sync.Pool{New: func() any { return new(Scanner) }}

// NewScanner returns a Scanner reading src under lim, from a pool: call
// Release when done with it and with the strings of its current token
// (strings already taken from it stay valid).
func NewScanner(src string, lim Limits) *Scanner {
	s := scanners.Get().(*Scanner)
	s.Reset(src, lim)
	return s
}

// Release returns s to the pool, keeping no reference to the document.
func (s *Scanner) Release() {
	clear(s.open[:cap(s.open)])
	clear(s.binds[:cap(s.binds)])
	clear(s.raw[:cap(s.raw)])
	clear(s.Attrs[:cap(s.Attrs)])
	s.Reset("", Limits{})
	scanners.Put(s)
}

// Attr returns the value of the un-namespaced attribute local of the
// current start tag (the first one, as Element.Attr).
func (s *Scanner) Attr(local string) (string, bool) {
	for _, a := range s.Attrs {
		if a.Local == local && a.Space == "" {
			return a.Value, true
		}
	}
	return "", false
}

// Depth is the number of open elements (the root is 1 while open).
func (s *Scanner) Depth() int { return len(s.open) }

// ElementText reads the character data of the element whose start tag was
// just read, up to its end; false when it has child elements or the
// Scanner declines the rest of the document.
func (s *Scanner) ElementText() (string, bool) {
	out := ""
	for {
		k, err := s.Next()
		if err != nil {
			return "", false
		}
		switch k {
		case KindText:
			if out == "" {
				out = s.Text
			} else {
				out += s.Text
			}
		case KindEnd:
			return out, true
		default:
			return "", false
		}
	}
}

// SkipElement reads past the element whose start tag was just read; false
// when the Scanner declines the rest of the document.
func (s *Scanner) SkipElement() bool {
	depth := s.Depth()
	for {
		k, err := s.Next()
		if err != nil {
			return false
		}
		if k == KindEnd && s.Depth() < depth {
			return true
		}
	}
}

// Next reads the next token into s.Kind and the fields it sets. Text
// outside the root element is skipped. After the root element ends only
// white space may follow; then Next returns KindEOF.
func (s *Scanner) Next() (Kind, error) {
	if s.pendingEnd {
		s.pendingEnd = false
		s.pop()
		return s.Kind, nil
	}
	if len(s.src) > s.lim.MaxBytes {
		return 0, ErrUnsupported
	}
	for {
		if s.pos >= len(s.src) {
			if len(s.open) != 0 || !s.started {
				return 0, ErrUnsupported
			}
			s.Kind = KindEOF
			return KindEOF, nil
		}
		if s.src[s.pos] != '<' {
			if len(s.open) == 0 {
				// Outside the root: white space only.
				for s.pos < len(s.src) && s.src[s.pos] != '<' {
					if c := s.src[s.pos]; c != ' ' && c != '\t' && c != '\n' {
						return 0, ErrUnsupported
					}
					s.pos++
				}
				continue
			}
			if err := s.text(); err != nil {
				return 0, err
			}
			s.Kind = KindText
			return KindText, nil
		}
		if s.pos+1 >= len(s.src) {
			return 0, ErrUnsupported
		}
		switch s.src[s.pos+1] {
		case '/':
			return s.endTag()
		case '?':
			if err := s.procInst(); err != nil {
				return 0, err
			}
			continue
		case '!':
			return 0, ErrUnsupported
		}
		return s.startTag()
	}
}

// pop ends the innermost element as the current token.
func (s *Scanner) pop() {
	top := s.open[len(s.open)-1]
	s.open = s.open[:len(s.open)-1]
	s.binds = s.binds[:top.nbinds]
	s.Kind, s.Space, s.Local = KindEnd, top.space, top.local
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func (s *Scanner) skipSpace() {
	src, pos := s.src, s.pos // locals: the loop runs in registers
	for pos < len(src) && isSpace(src[pos]) {
		pos++
	}
	s.pos = pos
}

// Byte classes, one table lookup each on the scanner's hot loops.
const (
	classNameStart = 1 << iota // ASCII letter, '_'
	classNameChar              // a name start, digit, '-', '.'
	classPlain                 // character data taken as it is: not markup, an entity, a control character or non-ASCII
)

var byteClass = func() (t [256]uint8) {
	for c := 0; c < 256; c++ {
		switch {
		case c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_':
			t[c] |= classNameStart | classNameChar
		case c >= '0' && c <= '9' || c == '-' || c == '.':
			t[c] |= classNameChar
		}
		if c >= 0x20 && c < utf8.RuneSelf && c != '<' && c != '&' && c != ']' && c != '"' && c != '\'' || c == '\t' || c == '\n' {
			t[c] |= classPlain
		}
	}
	return t
}()

func isNameStart(c byte) bool { return byteClass[c]&classNameStart != 0 }

// namePart reads [A-Za-z_][A-Za-z0-9_.-]* at s.pos.
func (s *Scanner) namePart() bool {
	src, pos := s.src, s.pos
	if pos >= len(src) || !isNameStart(src[pos]) {
		return false
	}
	pos++
	for pos < len(src) && byteClass[src[pos]]&classNameChar != 0 {
		pos++
	}
	s.pos = pos
	return true
}

// name reads an ASCII name, optionally prefixed (prefix:local), at s.pos.
func (s *Scanner) name() (qname, prefix, local string, ok bool) {
	start := s.pos
	if !s.namePart() {
		return "", "", "", false
	}
	mid := s.pos
	if s.pos < len(s.src) && s.src[s.pos] == ':' {
		s.pos++
		if !s.namePart() {
			return "", "", "", false
		}
		prefix, local = s.src[start:mid], s.src[mid+1:s.pos]
	} else {
		local = s.src[start:s.pos]
	}
	// A name must end at markup: anything else (a second colon, a
	// non-ASCII letter) is for encoding/xml to judge.
	if s.pos >= len(s.src) {
		return "", "", "", false
	}
	if c := s.src[s.pos]; !isSpace(c) && c != '=' && c != '>' && c != '/' {
		return "", "", "", false
	}
	return s.src[start:s.pos], prefix, local, true
}

// procInst accepts only the XML declaration before the root, with the
// version 1.0, a UTF-8 encoding and a yes/no standalone.
// commonDecls are XML declarations procInst accepts without reading
// their pseudo-attributes one by one.
var commonDecls = [...]string{
	`<?xml version="1.0" encoding="UTF-8"?>`,
	`<?xml version="1.0"?>`,
	`<?xml version="1.0" encoding="utf-8"?>`,
}

func (s *Scanner) procInst() error {
	if s.started || !strings.HasPrefix(s.src[s.pos:], "<?xml") {
		return ErrUnsupported
	}
	// The declarations clients send, recognised whole.
	for _, decl := range commonDecls {
		if strings.HasPrefix(s.src[s.pos:], decl) {
			s.pos += len(decl)
			return nil
		}
	}
	s.pos += len("<?xml")
	end := strings.Index(s.src[s.pos:], "?>")
	if end < 0 {
		return ErrUnsupported
	}
	body := s.src[s.pos : s.pos+end]
	s.pos += end + 2
	if body != "" && !isSpace(body[0]) {
		return ErrUnsupported // <?xml-stylesheet ...?> and the like
	}
	for {
		body = strings.TrimLeft(body, " \t\r\n")
		if body == "" {
			return nil
		}
		eq := strings.IndexByte(body, '=')
		if eq < 0 || eq+1 >= len(body) {
			return ErrUnsupported
		}
		name, q := body[:eq], body[eq+1]
		if q != '"' && q != '\'' {
			return ErrUnsupported
		}
		close := strings.IndexByte(body[eq+2:], q)
		if close < 0 {
			return ErrUnsupported
		}
		v := body[eq+2 : eq+2+close]
		body = body[eq+2+close+1:]
		if body != "" && !isSpace(body[0]) {
			return ErrUnsupported
		}
		switch {
		case name == "version" && v == "1.0":
		case name == "encoding" && strings.EqualFold(v, "utf-8"):
		case name == "standalone" && (v == "yes" || v == "no"):
		default:
			return ErrUnsupported
		}
	}
}

func (s *Scanner) endTag() (Kind, error) {
	s.pos += 2
	qname, _, _, ok := s.name()
	if !ok || len(s.open) == 0 || qname != s.open[len(s.open)-1].qname {
		return 0, ErrUnsupported
	}
	s.skipSpace()
	if s.pos >= len(s.src) || s.src[s.pos] != '>' {
		return 0, ErrUnsupported
	}
	s.pos++
	s.pop()
	return KindEnd, nil
}

func (s *Scanner) startTag() (Kind, error) {
	if s.started && len(s.open) == 0 {
		return 0, ErrUnsupported // a second root
	}
	s.pos++
	qname, prefix, local, ok := s.name()
	if !ok {
		return 0, ErrUnsupported
	}
	s.count++
	if s.count > s.lim.MaxElements || len(s.open)+1 > s.lim.MaxDepth {
		return 0, ErrUnsupported
	}
	s.raw = s.raw[:0]
	selfClose := false
	for {
		s.skipSpace()
		if s.pos >= len(s.src) {
			return 0, ErrUnsupported
		}
		c := s.src[s.pos]
		if c == '>' {
			s.pos++
			break
		}
		if c == '/' {
			if s.pos+1 >= len(s.src) || s.src[s.pos+1] != '>' {
				return 0, ErrUnsupported
			}
			s.pos += 2
			selfClose = true
			break
		}
		_, ap, al, ok := s.name()
		if !ok {
			return 0, ErrUnsupported
		}
		s.skipSpace()
		if s.pos >= len(s.src) || s.src[s.pos] != '=' {
			return 0, ErrUnsupported
		}
		s.pos++
		s.skipSpace()
		v, err := s.attrValue()
		if err != nil {
			return 0, err
		}
		s.raw = append(s.raw, rawAttr{ap, al, v})
	}
	nbinds := len(s.binds)
	for _, a := range s.raw {
		switch {
		case a.prefix == "" && a.local == "xmlns":
			s.binds = append(s.binds, binding{"", a.value})
		case a.prefix == "xmlns":
			s.binds = append(s.binds, binding{a.local, a.value})
		}
	}
	if len(s.binds) > maxBindings {
		return 0, ErrUnsupported
	}
	space, ok := s.lookup(prefix, true)
	if !ok {
		return 0, ErrUnsupported
	}
	s.Attrs = s.Attrs[:0]
	for _, a := range s.raw {
		if a.prefix == "xmlns" || a.prefix == "" && a.local == "xmlns" {
			continue
		}
		as := ""
		if a.prefix != "" {
			if as, ok = s.lookup(a.prefix, false); !ok {
				return 0, ErrUnsupported
			}
		}
		s.Attrs = append(s.Attrs, Attr{Space: as, Local: a.local, Value: a.value})
	}
	s.open = append(s.open, openElem{qname: qname, nbinds: nbinds, space: space, local: local})
	s.started = true
	s.pendingEnd = selfClose
	s.Kind, s.Space, s.Local = KindStart, space, local
	return KindStart, nil
}

// lookup resolves a prefix as Parse does: xml is fixed, the empty prefix is
// the default namespace for elements only.
func (s *Scanner) lookup(prefix string, isElement bool) (string, bool) {
	if prefix == "xml" {
		return XMLNamespace, true
	}
	if prefix == "" && !isElement {
		return "", true
	}
	for i := len(s.binds) - 1; i >= 0; i-- {
		if s.binds[i].prefix == prefix {
			return s.binds[i].ns, true
		}
	}
	return "", prefix == ""
}

func (s *Scanner) attrValue() (string, error) {
	if s.pos >= len(s.src) {
		return "", ErrUnsupported
	}
	q := s.src[s.pos]
	if q != '"' && q != '\'' {
		return "", ErrUnsupported
	}
	s.pos++
	return s.chars(q)
}

// text reads character data up to the next '<' into s.Text.
func (s *Scanner) text() error {
	t, err := s.chars('<')
	s.Text = t
	return err
}

// chars reads up to the delimiter stop ('<' for text, the quote for an
// attribute value, which it consumes), decoding the predefined entities
// and refusing what encoding/xml refuses or would rewrite (CR, ]]> in
// text, control characters, invalid UTF-8).
func (s *Scanner) chars(stop byte) (string, error) {
	start := s.pos
	decoded := false
	s.buf = s.buf[:0]
	for s.pos < len(s.src) {
		if !decoded {
			// The usual run: bytes taken as they are, one lookup each.
			src, pos := s.src, s.pos
			for pos < len(src) && byteClass[src[pos]]&classPlain != 0 {
				pos++
			}
			if s.pos = pos; pos >= len(src) {
				break
			}
		}
		c := s.src[s.pos]
		switch {
		case c == stop:
			out := s.src[start:s.pos]
			if decoded {
				out = string(s.buf)
			}
			if stop != '<' {
				s.pos++ // the closing quote
			}
			return out, nil
		case c == '<':
			return "", ErrUnsupported // inside a quoted value
		case c == '&':
			if !decoded {
				s.buf = append(s.buf, s.src[start:s.pos]...)
				decoded = true
			}
			r, n := entity(s.src[s.pos:])
			if n == 0 {
				return "", ErrUnsupported
			}
			s.buf = append(s.buf, r)
			s.pos += n
			continue
		case c == ']' && stop == '<' && strings.HasPrefix(s.src[s.pos:], "]]>"):
			return "", ErrUnsupported
		case c < 0x20 && c != '\t' && c != '\n':
			return "", ErrUnsupported
		case c >= utf8.RuneSelf:
			r, size := utf8.DecodeRuneInString(s.src[s.pos:])
			if r == utf8.RuneError && size == 1 || !(r >= 0x20 && r <= 0xD7FF || r >= 0xE000 && r <= 0xFFFD || r >= 0x10000 && r <= 0x10FFFF) {
				return "", ErrUnsupported
			}
			if decoded {
				s.buf = append(s.buf, s.src[s.pos:s.pos+size]...)
			}
			s.pos += size
			continue
		}
		if decoded {
			s.buf = append(s.buf, c)
		}
		s.pos++
	}
	if stop != '<' {
		return "", ErrUnsupported
	}
	out := s.src[start:]
	if decoded {
		out = string(s.buf)
	}
	return out, nil
}

// entity decodes one of the five predefined entities at the start of t.
func entity(t string) (byte, int) {
	for _, e := range [...]struct {
		ref string
		r   byte
	}{{"&amp;", '&'}, {"&lt;", '<'}, {"&gt;", '>'}, {"&quot;", '"'}, {"&apos;", '\''}} {
		if strings.HasPrefix(t, e.ref) {
			return e.r, len(e.ref)
		}
	}
	return 0, 0
}

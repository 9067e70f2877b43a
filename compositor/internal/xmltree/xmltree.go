package xmltree

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

// Defaults for Limits fields left zero.
const (
	DefaultMaxBytes    = 64 << 10
	DefaultMaxDepth    = 32
	DefaultMaxElements = 4096
)

// Limits bound what Parse accepts; zero fields take the defaults.
type Limits struct {
	MaxBytes    int // document size
	MaxDepth    int // element nesting (the root is depth 1)
	MaxElements int // total elements
}

func (l Limits) norm() Limits {
	if l.MaxBytes <= 0 {
		l.MaxBytes = DefaultMaxBytes
	}
	if l.MaxDepth <= 0 {
		l.MaxDepth = DefaultMaxDepth
	}
	if l.MaxElements <= 0 {
		l.MaxElements = DefaultMaxElements
	}
	return l
}

// Errors for exceeded limits (wrapped).
var (
	ErrTooLarge = errors.New("xml: document too large")
	ErrTooDeep  = errors.New("xml: nesting too deep")
)

// XMLNamespace is the namespace of the xml: prefix (xml:lang).
const XMLNamespace = "http://www.w3.org/XML/1998/namespace"

// Attr is an attribute with its resolved namespace ("" for none).
type Attr struct{ Space, Local, Value string }

// Element is one XML element with its resolved namespace. Character data
// is kept in Text (concatenated; whitespace-only text beside child
// elements is dropped).
type Element struct {
	Space, Local string
	Attrs        []Attr
	Text         string
	Children     []Element
}

// Attr returns the value of the un-namespaced attribute local.
func (e *Element) Attr(local string) (string, bool) {
	for _, a := range e.Attrs {
		if a.Local == local && a.Space == "" {
			return a.Value, true
		}
	}
	return "", false
}

// Parse reads one document. It refuses DTDs, more than one root, and
// anything beyond lim. Documents in the Scanner's subset are read by the
// Scanner; the rest by encoding/xml (ParseDecoder), with the same result.
func Parse(data []byte, lim Limits) (*Element, error) {
	if root, ok := parseScan(data, lim); ok {
		return root, nil
	}
	return ParseDecoder(data, lim)
}

// parseScan builds the tree with a Scanner; false when the document is
// outside its subset.
func parseScan(data []byte, lim Limits) (*Element, bool) {
	s := NewScanner(string(data), lim)
	defer s.Release()
	if k, err := s.Next(); err != nil || k != KindStart {
		return nil, false
	}
	root := new(Element)
	if !s.ReadElement(root) {
		return nil, false
	}
	if k, err := s.Next(); err != nil || k != KindEOF {
		return nil, false
	}
	return root, true
}

// ReadElement reads the element whose start tag was just read (Kind is
// KindStart) up to its end tag into el, as Parse builds it: attributes,
// children, character data. false when the document is outside the
// Scanner's subset (the caller hands it to Parse).
func (s *Scanner) ReadElement(el *Element) bool {
	*el = Element{}
	s.startElement(el)
	stack := []*Element{el}
	text := []string{""} // character data of each open element, when in pieces
	for {
		k, err := s.Next()
		if err != nil {
			return false
		}
		switch k {
		case KindStart:
			parent := stack[len(stack)-1]
			parent.Children = append(parent.Children, Element{})
			child := &parent.Children[len(parent.Children)-1]
			s.startElement(child)
			stack = append(stack, child)
			text = append(text, "")
		case KindEnd:
			e := stack[len(stack)-1]
			e.Text = text[len(text)-1]
			if len(e.Children) > 0 && strings.TrimSpace(e.Text) == "" {
				e.Text = ""
			}
			stack = stack[:len(stack)-1]
			text = text[:len(text)-1]
			if len(stack) == 0 {
				return true
			}
		case KindText:
			if t := &text[len(text)-1]; *t == "" {
				*t = s.Text
			} else {
				*t += s.Text
			}
		default:
			return false
		}
	}
}

// startElement fills el's name and attributes from the start tag just read.
func (s *Scanner) startElement(el *Element) {
	el.Space, el.Local = s.Space, s.Local
	if len(s.raw) > 0 {
		// As ParseDecoder: non-nil when the tag had attributes, even if
		// all were namespace declarations.
		el.Attrs = append(make([]Attr, 0, len(s.Attrs)), s.Attrs...)
	}
}

// ParseDecoder is Parse with encoding/xml for every document (the
// reference the Scanner is tested against).
func ParseDecoder(data []byte, lim Limits) (*Element, error) {
	lim = lim.norm()
	if len(data) > lim.MaxBytes {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(data), lim.MaxBytes)
	}
	d := xml.NewDecoder(bytes.NewReader(data))
	d.Strict = true
	var stack []*Element
	var root *Element
	var text [][]byte // character data of each open element
	count := 0
	for {
		tok, err := d.RawToken()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("xml: %w", err)
		}
		// RawToken does not resolve namespaces; do it ourselves with a
		// scope stack so limits apply before any allocation grows.
		switch t := tok.(type) {
		case xml.StartElement:
			if root != nil && len(stack) == 0 {
				return nil, errors.New("xml: more than one root element")
			}
			count++
			if count > lim.MaxElements {
				return nil, fmt.Errorf("%w: more than %d elements", ErrTooLarge, lim.MaxElements)
			}
			if len(stack)+1 > lim.MaxDepth {
				return nil, fmt.Errorf("%w: depth %d, limit %d", ErrTooDeep, len(stack)+1, lim.MaxDepth)
			}
			var el *Element
			if len(stack) == 0 {
				root = &Element{}
				el = root
			} else {
				parent := stack[len(stack)-1]
				parent.Children = append(parent.Children, Element{})
				el = &parent.Children[len(parent.Children)-1]
			}
			if !validLocal(t.Name) {
				return nil, fmt.Errorf("xml: invalid element name %q", t.Name.Local)
			}
			el.Local = t.Name.Local
			el.Space = t.Name.Space // prefix for now; resolved at end
			for _, a := range t.Attr {
				if !validLocal(a.Name) {
					return nil, fmt.Errorf("xml: invalid attribute name %q", a.Name.Local)
				}
				el.Attrs = append(el.Attrs, Attr{Space: a.Name.Space, Local: a.Name.Local, Value: a.Value})
			}
			// A parent's Children array only grows after this element
			// ended, so pointers on the stack stay valid while open.
			stack = append(stack, el)
			text = append(text, nil)
		case xml.EndElement:
			if len(stack) == 0 {
				return nil, errors.New("xml: unexpected end element")
			}
			el := stack[len(stack)-1]
			if t.Name.Local != el.Local {
				return nil, fmt.Errorf("xml: element <%s> closed by </%s>", el.Local, t.Name.Local)
			}
			el.Text = string(text[len(text)-1])
			if len(el.Children) > 0 && strings.TrimSpace(el.Text) == "" {
				el.Text = ""
			}
			stack = stack[:len(stack)-1]
			text = text[:len(text)-1]
		case xml.CharData:
			if len(stack) == 0 {
				if len(bytes.TrimSpace(t)) > 0 {
					return nil, errors.New("xml: text outside the root element")
				}
				continue
			}
			if !utf8.Valid(t) {
				return nil, errors.New("xml: invalid UTF-8")
			}
			text[len(text)-1] = append(text[len(text)-1], t...)
		case xml.Directive:
			return nil, errors.New("xml: DTDs and directives are not allowed")
		case xml.ProcInst, xml.Comment:
		}
	}
	if root == nil {
		return nil, errors.New("xml: no root element")
	}
	if len(stack) != 0 {
		return nil, errors.New("xml: unexpected end of document")
	}
	if err := resolve(root, map[string][]string{}); err != nil {
		return nil, err
	}
	return root, nil
}

// resolve turns prefixes into namespace names, walking xmlns declarations.
// scope holds, per prefix, the declarations in scope innermost last: an
// element pushes its own and pops them when done, so the cost is linear in
// the document however many declarations it makes (copying a scope map per
// element was quadratic).
func resolve(e *Element, scope map[string][]string) error {
	var declared []string // prefixes this element pushed
	attrs := e.Attrs[:0]
	for _, a := range e.Attrs {
		prefix, decl := "", false
		switch {
		case a.Space == "" && a.Local == "xmlns":
			decl = true
		case a.Space == "xmlns":
			prefix, decl = a.Local, true
		}
		if !decl {
			attrs = append(attrs, a)
			continue
		}
		scope[prefix] = append(scope[prefix], a.Value)
		declared = append(declared, prefix)
	}
	defer func() {
		for _, p := range declared {
			scope[p] = scope[p][:len(scope[p])-1]
		}
	}()
	e.Attrs = attrs
	ns, err := lookup(scope, e.Space, true)
	if err != nil {
		return err
	}
	e.Space = ns
	for i := range e.Attrs {
		if e.Attrs[i].Space == "" {
			continue // un-prefixed attributes have no namespace
		}
		if e.Attrs[i].Space, err = lookup(scope, e.Attrs[i].Space, false); err != nil {
			return err
		}
	}
	for i := range e.Children {
		if err := resolve(&e.Children[i], scope); err != nil {
			return err
		}
	}
	return nil
}

func lookup(scope map[string][]string, prefix string, isElement bool) (string, error) {
	if prefix == "xml" {
		return XMLNamespace, nil
	}
	if prefix == "" && !isElement {
		return "", nil
	}
	if st := scope[prefix]; len(st) > 0 {
		return st[len(st)-1], nil
	}
	if prefix == "" {
		return "", nil
	}
	return "", fmt.Errorf("xml: undeclared namespace prefix %q", prefix)
}

// validLocal checks the local part of a prefixed name: encoding/xml
// validates "prefix:local" as one name, so "x:0" passes although "0" cannot
// start a name, and would not parse once written back.
func validLocal(n xml.Name) bool {
	if n.Space == "" {
		return n.Local != ""
	}
	if n.Local == "" {
		return false
	}
	r, _ := utf8.DecodeRuneInString(n.Local)
	switch {
	case r == '_' || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z'):
		return true
	case r < utf8.RuneSelf:
		return false
	}
	// Rare: let encoding/xml judge a non-ASCII name start.
	_, err := xml.NewDecoder(strings.NewReader("<" + n.Local + "/>")).RawToken()
	return err == nil
}

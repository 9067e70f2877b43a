package pidf

import (
	"errors"
	"fmt"
	"strings"

	"github.com/presencehub/presencehub/compositor/internal/xmltree"
)

// Namespaces.
const (
	NS      = "urn:ietf:params:xml:ns:pidf"
	NSDM    = "urn:ietf:params:xml:ns:pidf:data-model"
	NSRPID  = "urn:ietf:params:xml:ns:pidf:rpid"
	NSCIPID = "urn:ietf:params:xml:ns:pidf:cipid"
	NSCaps  = "urn:ietf:params:xml:ns:pidf:caps"
)

// Basic status values (RFC 3863 §4.1.4).
const (
	Open   = "open"
	Closed = "closed"
)

// Element is an extension element kept as a tree (persons, devices, ...).
type Element = xmltree.Element

// Attr is an attribute of an Element.
type Attr = xmltree.Attr

// Limits bound what Parse accepts; zero fields take safe defaults
// (64 KiB, depth 32).
type Limits = xmltree.Limits

// Document is one presence document (RFC 3863 §4.1).
type Document struct {
	Entity  string
	Tuples  []Tuple
	Notes   []Note
	Persons []Element // dm:person (RFC 4479) with RPID content
	Extra   []Element // other top-level extension elements (dm:device, ...)
}

// Tuple is one <tuple> (RFC 3863 §4.1.2).
type Tuple struct {
	ID              string
	Basic           string    // Open, Closed or "" (status without basic)
	StatusExtra     []Element // other children of <status>
	Contact         string
	ContactPriority string // as written, e.g. "0.8"
	Notes           []Note
	Timestamp       string // RFC 3339, as written
	Extra           []Element
}

// Note is a <note> with its optional xml:lang.
type Note struct{ Lang, Text string }

// Parse parses and validates a PIDF body. The usual body is read by a
// scanner straight into the Document (extension elements into their small
// trees); anything unusual (and every invalid body, for its error) by the
// tree parser, with the same result.
func Parse(data []byte, lim Limits) (*Document, error) {
	if doc, ok := parseScan(data, lim); ok {
		return doc, nil
	}
	return parseTree(data, lim)
}

// parseTree parses the body into a tree, then reads the tree.
func parseTree(data []byte, lim Limits) (*Document, error) {
	root, err := xmltree.Parse(data, lim)
	if err != nil {
		return nil, fmt.Errorf("pidf: %w", err)
	}
	if root.Space != NS || root.Local != "presence" {
		return nil, fmt.Errorf("pidf: root is {%s}%s, want {%s}presence", root.Space, root.Local, NS)
	}
	doc := &Document{}
	entity, ok := root.Attr("entity")
	if !ok || strings.TrimSpace(entity) == "" {
		return nil, errors.New("pidf: presence without entity")
	}
	doc.Entity = strings.TrimSpace(entity)
	seen := map[string]bool{}
	for i := range root.Children {
		c := &root.Children[i]
		switch {
		case c.Space == NS && c.Local == "tuple":
			t, err := parseTuple(c)
			if err != nil {
				return nil, err
			}
			if seen[t.ID] {
				return nil, fmt.Errorf("pidf: duplicate tuple id %q", t.ID)
			}
			seen[t.ID] = true
			doc.Tuples = append(doc.Tuples, t)
		case c.Space == NS && c.Local == "note":
			doc.Notes = append(doc.Notes, parseNote(c))
		case c.Space == NSDM && c.Local == "person":
			if id, _ := c.Attr("id"); id == "" {
				return nil, errors.New("pidf: person without id")
			}
			doc.Persons = append(doc.Persons, *c)
		case c.Space == NS:
			return nil, fmt.Errorf("pidf: unknown element <%s> in presence", c.Local)
		default:
			doc.Extra = append(doc.Extra, *c)
		}
	}
	return doc, nil
}

func parseNote(e *Element) Note {
	n := Note{Text: e.Text}
	for _, a := range e.Attrs {
		if a.Space == xmltree.XMLNamespace && a.Local == "lang" {
			n.Lang = a.Value
		}
	}
	return n
}

func parseTuple(e *Element) (Tuple, error) {
	var t Tuple
	id, _ := e.Attr("id")
	t.ID = strings.TrimSpace(id)
	if t.ID == "" {
		return t, errors.New("pidf: tuple without id")
	}
	hasStatus := false
	for i := range e.Children {
		c := &e.Children[i]
		switch {
		case c.Space == NS && c.Local == "status":
			if hasStatus {
				return t, fmt.Errorf("pidf: tuple %q: more than one status", t.ID)
			}
			hasStatus = true
			for j := range c.Children {
				s := &c.Children[j]
				if s.Space == NS && s.Local == "basic" {
					// open and closed in any case; any other value (baresip
					// sends "unknown") is read as a status without basic:
					// no availability stated, rather than a refusal.
					if b := strings.ToLower(strings.TrimSpace(s.Text)); b == Open || b == Closed {
						t.Basic = b
					}
					continue
				}
				t.StatusExtra = append(t.StatusExtra, *s)
			}
		case c.Space == NS && c.Local == "contact":
			t.Contact = strings.TrimSpace(c.Text)
			t.ContactPriority, _ = c.Attr("priority")
		case c.Space == NS && c.Local == "note":
			t.Notes = append(t.Notes, parseNote(c))
		case c.Space == NS && c.Local == "timestamp":
			t.Timestamp = strings.TrimSpace(c.Text)
		case c.Space == NS:
			return t, fmt.Errorf("pidf: tuple %q: unknown element <%s>", t.ID, c.Local)
		default:
			t.Extra = append(t.Extra, *c)
		}
	}
	if !hasStatus {
		return t, fmt.Errorf("pidf: tuple %q without status", t.ID)
	}
	return t, nil
}

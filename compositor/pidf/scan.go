package pidf

import (
	"strings"

	"github.com/presencehub/presencehub/compositor/internal/xmltree"
)

// maxScanTuples is how many tuples parseScan reads (their ids are checked
// for duplicates pairwise); a document with more goes to parseTree.
const maxScanTuples = 16

// parseScan reads a PIDF document straight from the token stream: tuples,
// notes and their fields are substrings of one copy of data; only extension
// elements (dm:person, dm:device, elements of other namespaces) become
// trees, as parseTree keeps them. It reports false for anything unusual — a
// document outside the scanner's subset, or one that is invalid — and the
// caller parses it with parseTree, which gives the canonical result or
// error. What it accepts, parseTree accepts with the same Document
// (FuzzParse_ScannerMatchesTree).
func parseScan(data []byte, lim Limits) (*Document, bool) {
	s := xmltree.NewScanner(string(data), lim)
	defer s.Release()
	if k, err := s.Next(); err != nil || k != xmltree.KindStart || s.Space != NS || s.Local != "presence" {
		return nil, false
	}
	entity, _ := s.Attr("entity")
	if strings.TrimSpace(entity) == "" {
		return nil, false
	}
	held := &docOfOne{}
	doc := &held.doc
	doc.Entity = strings.TrimSpace(entity)
	doc.Tuples = held.one[:0]
	for {
		k, err := s.Next()
		if err != nil {
			return nil, false
		}
		switch k {
		case xmltree.KindText:
			continue
		case xmltree.KindEnd:
			if k, err := s.Next(); err != nil || k != xmltree.KindEOF {
				return nil, false
			}
			if len(doc.Tuples) == 0 {
				doc.Tuples = nil // as parseTree
			}
			return doc, true
		}
		switch {
		case s.Space == NS && s.Local == "tuple":
			if len(doc.Tuples) == maxScanTuples {
				return nil, false
			}
			t, ok := scanTuple(s)
			if !ok {
				return nil, false
			}
			for i := range doc.Tuples {
				if doc.Tuples[i].ID == t.ID {
					return nil, false
				}
			}
			doc.Tuples = append(doc.Tuples, t)
		case s.Space == NS && s.Local == "note":
			n, ok := scanNote(s)
			if !ok {
				return nil, false
			}
			doc.Notes = append(doc.Notes, n)
		case s.Space == NSDM && s.Local == "person":
			if id, _ := s.Attr("id"); id == "" {
				return nil, false
			}
			doc.Persons = append(doc.Persons, Element{})
			if !s.ReadElement(&doc.Persons[len(doc.Persons)-1]) {
				return nil, false
			}
		case s.Space == NS:
			return nil, false // unknown element: parseTree's error
		default:
			doc.Extra = append(doc.Extra, Element{})
			if !s.ReadElement(&doc.Extra[len(doc.Extra)-1]) {
				return nil, false
			}
		}
	}
}

// docOfOne is a Document with room for one tuple: the usual body (one
// device) is one allocation.
type docOfOne struct {
	doc Document
	one [1]Tuple
}

// scanNote is parseNote on the token stream.
func scanNote(s *xmltree.Scanner) (Note, bool) {
	var n Note
	for _, a := range s.Attrs {
		if a.Space == xmltree.XMLNamespace && a.Local == "lang" {
			n.Lang = a.Value
		}
	}
	var ok bool
	n.Text, ok = s.ElementText()
	return n, ok
}

// scanTuple is parseTuple on the token stream.
func scanTuple(s *xmltree.Scanner) (Tuple, bool) {
	var t Tuple
	id, _ := s.Attr("id")
	if t.ID = strings.TrimSpace(id); t.ID == "" {
		return t, false
	}
	hasStatus := false
	for {
		k, err := s.Next()
		if err != nil {
			return t, false
		}
		switch k {
		case xmltree.KindText:
			continue
		case xmltree.KindEnd:
			return t, hasStatus
		}
		ok := true
		switch {
		case s.Space == NS && s.Local == "status":
			if hasStatus {
				return t, false
			}
			hasStatus = true
			ok = scanStatus(s, &t)
		case s.Space == NS && s.Local == "contact":
			t.ContactPriority, _ = s.Attr("priority")
			var c string
			if c, ok = s.ElementText(); ok {
				t.Contact = strings.TrimSpace(c)
			}
		case s.Space == NS && s.Local == "note":
			var n Note
			if n, ok = scanNote(s); ok {
				t.Notes = append(t.Notes, n)
			}
		case s.Space == NS && s.Local == "timestamp":
			var ts string
			if ts, ok = s.ElementText(); ok {
				t.Timestamp = strings.TrimSpace(ts)
			}
		case s.Space == NS:
			return t, false // unknown element: parseTree's error
		default:
			t.Extra = append(t.Extra, Element{})
			ok = s.ReadElement(&t.Extra[len(t.Extra)-1])
		}
		if !ok {
			return t, false
		}
	}
}

// scanStatus reads a <status> into t: basic (open and closed in any case,
// anything else no basic, as parseTuple) and the other children as trees.
func scanStatus(s *xmltree.Scanner, t *Tuple) bool {
	for {
		k, err := s.Next()
		if err != nil {
			return false
		}
		switch k {
		case xmltree.KindText:
			continue
		case xmltree.KindEnd:
			return true
		}
		if s.Space == NS && s.Local == "basic" {
			b, ok := s.ElementText()
			if !ok {
				return false
			}
			if b = strings.ToLower(strings.TrimSpace(b)); b == Open || b == Closed {
				t.Basic = b
			}
			continue
		}
		t.StatusExtra = append(t.StatusExtra, Element{})
		if !s.ReadElement(&t.StatusExtra[len(t.StatusExtra)-1]) {
			return false
		}
	}
}

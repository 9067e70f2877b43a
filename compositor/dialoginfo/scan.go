package dialoginfo

import (
	"strconv"
	"strings"

	"github.com/presencehub/presencehub/compositor/internal/xmltree"
)

// parseScan reads a dialog-info document straight from the token stream
// (no tree, no encoding/xml): the fields of a Document are substrings of
// one copy of data. It reports false for anything unusual — a document
// outside the scanner's subset, or one that is invalid — and the caller
// parses it with parseTree, which gives the canonical result or error. What
// it accepts, parseTree accepts with the same Document (FuzzParse_
// ScannerMatchesTree).
func parseScan(data []byte, lim Limits) (*Document, bool) {
	s := xmltree.NewScanner(string(data), lim)
	defer s.Release()
	if k, err := s.Next(); err != nil || k != xmltree.KindStart || s.Space != NS || s.Local != "dialog-info" {
		return nil, false
	}
	held := &docOfOne{}
	doc := &held.doc
	doc.Dialogs = held.one[:0]
	v, ok := s.Attr("version")
	if !ok {
		return nil, false
	}
	var err error
	if doc.Version, err = strconv.ParseUint(strings.TrimSpace(v), 10, 64); err != nil {
		return nil, false
	}
	state, _ := s.Attr("state")
	doc.State = enum(state)
	if doc.State != Full && doc.State != Partial {
		return nil, false
	}
	entity, _ := s.Attr("entity")
	if doc.Entity = strings.TrimSpace(entity); doc.Entity == "" {
		return nil, false
	}
	var seen map[string]bool // past a few dialogs; a scan before
	for {
		k, err := s.Next()
		if err != nil {
			return nil, false
		}
		switch k {
		case xmltree.KindEnd:
			if k, err := s.Next(); err != nil || k != xmltree.KindEOF {
				return nil, false
			}
			if len(doc.Dialogs) == 0 {
				doc.Dialogs = nil // as parseTree
			}
			return doc, true
		case xmltree.KindStart:
			if s.Space != NS || s.Local != "dialog" {
				if !s.SkipElement() {
					return nil, false
				}
				continue
			}
			d, ok := scanDialog(s)
			if !ok {
				return nil, false
			}
			if seen == nil && len(doc.Dialogs) >= 8 {
				seen = make(map[string]bool, 2*len(doc.Dialogs))
				for _, x := range doc.Dialogs {
					seen[x.ID] = true
				}
			}
			if seen != nil {
				if seen[d.ID] {
					return nil, false
				}
				seen[d.ID] = true
			} else {
				for i := range doc.Dialogs {
					if doc.Dialogs[i].ID == d.ID {
						return nil, false
					}
				}
			}
			doc.Dialogs = append(doc.Dialogs, d)
		}
	}
}

// docOfOne is a Document with room for one dialog: the usual body (one
// call) is one allocation; a second dialog moves them to a slice of their
// own.
type docOfOne struct {
	doc Document
	one [1]Dialog
}

// scanDialog is parseDialog on the token stream: the same fields, the
// same rules (a later <state>, <local> or <remote> overrides an earlier one).
func scanDialog(s *xmltree.Scanner) (Dialog, bool) {
	var d Dialog
	d.ID, _ = s.Attr("id")
	if d.ID = strings.TrimSpace(d.ID); d.ID == "" {
		return d, false
	}
	d.CallID, _ = s.Attr("call-id")
	d.LocalTag, _ = s.Attr("local-tag")
	d.RemoteTag, _ = s.Attr("remote-tag")
	direction, _ := s.Attr("direction")
	d.Direction = enum(direction)
	if d.Direction != "" && d.Direction != Initiator && d.Direction != Recipient {
		return d, false
	}
	hasState := false
	for {
		k, err := s.Next()
		if err != nil {
			return d, false
		}
		switch k {
		case xmltree.KindEnd:
			return d, hasState
		case xmltree.KindText:
			continue
		}
		ok := true
		switch {
		case s.Space == NS && s.Local == "state":
			hasState = true
			event, _ := s.Attr("event")
			d.Event = enum(event)
			if code, present := s.Attr("code"); present {
				n, err := strconv.Atoi(strings.TrimSpace(code))
				if err != nil || n < 100 || n > 699 {
					return d, false
				}
				d.Code = n
			}
			var t string
			if t, ok = s.ElementText(); ok {
				d.State = enum(t)
				ok = validStates[d.State]
			}
		case s.Space == NS && s.Local == "local":
			d.LocalIdentity, d.LocalDisplay, d.LocalTarget, d.LocalParams, ok = scanParticipant(s)
		case s.Space == NS && s.Local == "remote":
			d.RemoteIdentity, d.RemoteDisplay, d.RemoteTarget, d.RemoteParams, ok = scanParticipant(s)
		default:
			ok = s.SkipElement()
		}
		if !ok {
			return d, false
		}
	}
}

// scanParticipant is parseParticipant on the token stream.
func scanParticipant(s *xmltree.Scanner) (identity, display, target string, params []Param, ok bool) {
	for {
		k, err := s.Next()
		if err != nil {
			return "", "", "", nil, false
		}
		switch k {
		case xmltree.KindEnd:
			return identity, display, target, params, true
		case xmltree.KindText:
			continue
		}
		ok := true
		switch {
		case s.Space == NS && s.Local == "identity":
			display, _ = s.Attr("display")
			var t string
			if t, ok = s.ElementText(); ok {
				identity = strings.TrimSpace(t)
			}
		case s.Space == NS && s.Local == "target":
			target, _ = s.Attr("uri")
			params, ok = scanParams(s, params)
		default:
			ok = s.SkipElement()
		}
		if !ok {
			return "", "", "", nil, false
		}
	}
}

// scanParams adds the <param>s of a <target> to params.
func scanParams(s *xmltree.Scanner, params []Param) ([]Param, bool) {
	for {
		k, err := s.Next()
		if err != nil {
			return nil, false
		}
		switch k {
		case xmltree.KindEnd:
			return params, true
		case xmltree.KindText:
			continue
		}
		if s.Space == NS && s.Local == "param" {
			name, _ := s.Attr("pname")
			value, _ := s.Attr("pvalue")
			if name != "" {
				params = append(params, Param{Name: name, Value: value})
			}
		}
		if !s.SkipElement() {
			return nil, false
		}
	}
}

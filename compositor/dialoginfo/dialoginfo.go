package dialoginfo

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/presencehub/presencehub/compositor/internal/xmltree"
)

// NS is the dialog-info namespace.
const NS = "urn:ietf:params:xml:ns:dialog-info"

// HubNS is the namespace of the hub's own extension element in <dialog>
// (RFC 4235 §4.1.1 allows elements of other namespaces after <remote>):
//
//	<since xmlns="urn:x-presencehub:dialog">2026-12-03T09:41:07.250Z</since>
//
// the instant (RFC 3339, UTC, milliseconds) the dialog entered its current
// state, stamped by the hub's compositor. Parse never reads it: a
// publisher cannot set the hub's stamp.
const HubNS = "urn:x-presencehub:dialog"

// SinceLayout is the fixed-width RFC 3339 form <since> is rendered in.
const SinceLayout = "2006-01-02T15:04:05.000Z"

// Document states (RFC 4235 §4.1).
const (
	Full    = "full"
	Partial = "partial"
)

// Dialog states (RFC 4235 §3.7.1).
const (
	Trying     = "trying"
	Proceeding = "proceeding"
	Early      = "early"
	Confirmed  = "confirmed"
	Terminated = "terminated"
)

// Directions.
const (
	Initiator = "initiator"
	Recipient = "recipient"
)

// Limits bound what Parse accepts; zero fields take safe defaults
// (64 KiB, depth 32).
type Limits = xmltree.Limits

// Document is one dialog-info document (RFC 4235 §4.1).
type Document struct {
	Version uint64
	State   string // Full or Partial; "" renders as Full
	Entity  string
	Dialogs []Dialog
}

// Dialog is one <dialog> (RFC 4235 §4.1.1).
type Dialog struct {
	ID        string
	CallID    string
	LocalTag  string
	RemoteTag string
	Direction string // Initiator, Recipient or ""
	State     string // Trying ... Terminated
	Event     string // state event attribute (cancelled, rejected, replaced, local-bye, remote-bye, error, timeout)
	Code      int    // state code attribute; 0 = absent

	LocalIdentity, LocalDisplay, LocalTarget    string
	RemoteIdentity, RemoteDisplay, RemoteTarget string
	// Target parameters (RFC 4235 §4.1.6.2), e.g. +sip.rendering=no while
	// the local party has the call on hold.
	LocalParams, RemoteParams []Param

	// Since is when the dialog entered State, stamped by the hub (zero:
	// not rendered). Parse leaves it zero whatever the body says.
	Since time.Time
}

// Param is a <param pname= pvalue=/> of a participant's target.
type Param struct{ Name, Value string }

// Terminated reports whether the dialog has ended.
func (d *Dialog) Terminated() bool { return d.State == Terminated }

var validStates = map[string]bool{Trying: true, Proceeding: true, Early: true, Confirmed: true, Terminated: true}

// Parse parses and validates a dialog-info body. The usual body is read
// by a scanner without building a tree; anything unusual (and every invalid
// body, for its error) by the tree parser, with the same result.
func Parse(data []byte, lim Limits) (*Document, error) {
	if doc, ok := parseScan(data, lim); ok {
		return doc, nil
	}
	return parseTree(data, lim, xmltree.Parse)
}

// parseTree parses the body into a tree with parse, then reads the tree.
func parseTree(data []byte, lim Limits, parse func([]byte, Limits) (*xmltree.Element, error)) (*Document, error) {
	root, err := parse(data, lim)
	if err != nil {
		return nil, fmt.Errorf("dialog-info: %w", err)
	}
	if root.Space != NS || root.Local != "dialog-info" {
		return nil, fmt.Errorf("dialog-info: root is {%s}%s, want {%s}dialog-info", root.Space, root.Local, NS)
	}
	doc := &Document{}
	v, ok := root.Attr("version")
	if !ok {
		return nil, errors.New("dialog-info: missing version")
	}
	if doc.Version, err = strconv.ParseUint(strings.TrimSpace(v), 10, 64); err != nil {
		return nil, fmt.Errorf("dialog-info: version %q: not a non-negative integer", v)
	}
	state, _ := root.Attr("state")
	doc.State = enum(state)
	if doc.State != Full && doc.State != Partial {
		return nil, fmt.Errorf("dialog-info: state %q, want full or partial", doc.State)
	}
	entity, _ := root.Attr("entity")
	if doc.Entity = strings.TrimSpace(entity); doc.Entity == "" {
		return nil, errors.New("dialog-info: missing entity")
	}
	seen := map[string]bool{}
	for i := range root.Children {
		c := &root.Children[i]
		if c.Space != NS || c.Local != "dialog" {
			continue // extensions: accepted, not kept
		}
		d, err := parseDialog(c)
		if err != nil {
			return nil, err
		}
		if seen[d.ID] {
			return nil, fmt.Errorf("dialog-info: duplicate dialog id %q", d.ID)
		}
		seen[d.ID] = true
		doc.Dialogs = append(doc.Dialogs, d)
	}
	return doc, nil
}

func parseDialog(e *xmltree.Element) (Dialog, error) {
	var d Dialog
	d.ID, _ = e.Attr("id")
	if d.ID = strings.TrimSpace(d.ID); d.ID == "" {
		return d, errors.New("dialog-info: dialog without id")
	}
	d.CallID, _ = e.Attr("call-id")
	d.LocalTag, _ = e.Attr("local-tag")
	d.RemoteTag, _ = e.Attr("remote-tag")
	direction, _ := e.Attr("direction")
	d.Direction = enum(direction)
	if d.Direction != "" && d.Direction != Initiator && d.Direction != Recipient {
		return d, fmt.Errorf("dialog-info: dialog %q: direction %q", d.ID, d.Direction)
	}
	hasState := false
	for i := range e.Children {
		c := &e.Children[i]
		if c.Space != NS {
			continue
		}
		switch c.Local {
		case "state":
			hasState = true
			d.State = enum(c.Text)
			if !validStates[d.State] {
				return d, fmt.Errorf("dialog-info: state %q is none of trying, proceeding, early, confirmed, terminated (dialog %q)", strings.TrimSpace(c.Text), d.ID)
			}
			event, _ := c.Attr("event")
			d.Event = enum(event)
			if code, ok := c.Attr("code"); ok {
				n, err := strconv.Atoi(strings.TrimSpace(code))
				if err != nil || n < 100 || n > 699 {
					return d, fmt.Errorf("dialog-info: dialog %q: code %q", d.ID, code)
				}
				d.Code = n
			}
		case "local":
			d.LocalIdentity, d.LocalDisplay, d.LocalTarget, d.LocalParams = parseParticipant(c)
		case "remote":
			d.RemoteIdentity, d.RemoteDisplay, d.RemoteTarget, d.RemoteParams = parseParticipant(c)
		}
	}
	if !hasState {
		return d, fmt.Errorf("dialog-info: dialog %q without state", d.ID)
	}
	return d, nil
}

// enum reads an enumerated value of the schema (RFC 4235 §4.1) liberally:
// publishers write "Trying" (Kamailio's pua_dialoginfo) or pad with white
// space, so values compare case-insensitively and are kept in the lower
// case the hub renders.
func enum(v string) string {
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < 'a' || c > 'z' {
			if c != '-' {
				return strings.ToLower(strings.TrimSpace(v))
			}
		}
	}
	return v // the usual value: lower-case letters (and '-'), nothing to trim
}

func parseParticipant(e *xmltree.Element) (identity, display, target string, params []Param) {
	for i := range e.Children {
		c := &e.Children[i]
		if c.Space != NS {
			continue
		}
		switch c.Local {
		case "identity":
			identity = strings.TrimSpace(c.Text)
			display, _ = c.Attr("display")
		case "target":
			target, _ = c.Attr("uri")
			for j := range c.Children {
				p := &c.Children[j]
				if p.Space == NS && p.Local == "param" {
					name, _ := p.Attr("pname")
					value, _ := p.Attr("pvalue")
					if name != "" {
						params = append(params, Param{Name: name, Value: value})
					}
				}
			}
		}
	}
	return identity, display, target, params
}

package feed

import (
	"regexp"
	"strings"

	"github.com/presencehub/presencehub/compositor/dialoginfo"
	"github.com/presencehub/presencehub/compositor/pidf"
)

// Lamp states: the attendant console's vocabulary (web/static/blf.js).
const (
	Idle    = "idle"
	Ringing = "ringing"
	Calling = "calling"
	Busy    = "busy"
	Hold    = "hold"
	Offline = "offline"
)

// Lamp is what a busy-lamp field shows for one extension.
type Lamp struct {
	State string // Idle, Ringing, Calling, Busy, Hold or Offline
	Peer  string // the other party of the call that decided State ("" when none)
}

// Status is what the lamp reads from a composed PIDF document (RFC 3863).
type Status struct {
	Basic      string   // "open" when any tuple is open, "closed" when tuples exist and none is, "" without tuples
	Note       string   // the first person note, else tuple note, else document note
	Activities []string // RPID activities (RFC 4480 §3.2), e.g. "on-the-phone"
}

// ReadPresence reads basic, note and activities from a composed PIDF
// document (nil: nothing known).
func ReadPresence(doc *pidf.Document) Status {
	var p Status
	if doc == nil {
		return p
	}
	for _, t := range doc.Tuples {
		switch t.Basic {
		case pidf.Open:
			p.Basic = pidf.Open
		case pidf.Closed:
			if p.Basic == "" {
				p.Basic = pidf.Closed
			}
		}
	}
	for i := range doc.Persons {
		if p.Note == "" {
			for _, c := range doc.Persons[i].Children {
				if c.Local == "note" && strings.TrimSpace(c.Text) != "" {
					p.Note = strings.TrimSpace(c.Text)
					break
				}
			}
		}
		p.Activities = activities(doc.Persons[i], p.Activities)
	}
	for _, t := range doc.Tuples {
		for _, n := range t.Notes {
			if p.Note == "" && strings.TrimSpace(n.Text) != "" {
				p.Note = strings.TrimSpace(n.Text)
			}
		}
		for _, e := range t.StatusExtra {
			p.Activities = activities(e, p.Activities)
		}
		for _, e := range t.Extra {
			p.Activities = activities(e, p.Activities)
		}
	}
	for _, n := range doc.Notes {
		if p.Note == "" && strings.TrimSpace(n.Text) != "" {
			p.Note = strings.TrimSpace(n.Text)
		}
	}
	for _, e := range doc.Extra {
		p.Activities = activities(e, p.Activities)
	}
	return p
}

// activities appends the RPID activity names found anywhere under e.
func activities(e pidf.Element, out []string) []string {
	if e.Local == "activities" {
		for _, c := range e.Children {
			if c.Local != "note" && !contains(out, c.Local) {
				out = append(out, c.Local)
			}
		}
		return out
	}
	for _, c := range e.Children {
		out = activities(c, out)
	}
	return out
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

var holdWord = regexp.MustCompile(`(?i)\bhold\b`)

// LampOf decides the lamp of the extension entity (its AOR) from its live
// dialogs (RFC 4235; terminated ones are ignored) and its presence, with
// the console's rules, first match wins:
//
//	ringing  a dialog in trying/proceeding/early whose direction is recipient (or not given)
//	hold     confirmed dialogs only, all on hold (local target +sip.rendering=no, RFC 4235 §4.1.6.2),
//	         or presence on-the-phone with a note mentioning hold
//	busy     a confirmed dialog
//	calling  a dialog in trying/proceeding/early with direction initiator
//	offline  no live dialog and presence basic closed
//	busy     no live dialog but presence on-the-phone (hold when the note mentions hold)
//	idle     otherwise
func LampOf(entity string, dialogs []dialoginfo.Dialog, p Status) Lamp {
	domain := ""
	if at := strings.IndexByte(entity, '@'); at >= 0 {
		domain = entity[at+1:]
		if i := strings.IndexAny(domain, ";>"); i >= 0 {
			domain = domain[:i]
		}
	}
	early := func(d *dialoginfo.Dialog) bool {
		return d.State == dialoginfo.Trying || d.State == dialoginfo.Proceeding || d.State == dialoginfo.Early
	}
	for i := range dialogs {
		if d := &dialogs[i]; !d.Terminated() && early(d) && d.Direction != dialoginfo.Initiator {
			return Lamp{Ringing, PeerOf(d, domain)}
		}
	}
	onThePhone := contains(p.Activities, "on-the-phone")
	var first, talking *dialoginfo.Dialog
	for i := range dialogs {
		if d := &dialogs[i]; d.State == dialoginfo.Confirmed {
			if first == nil {
				first = d
			}
			if talking == nil && !onHold(d) {
				talking = d
			}
		}
	}
	if first != nil {
		if talking == nil || onThePhone && holdWord.MatchString(p.Note) {
			return Lamp{Hold, PeerOf(first, domain)}
		}
		return Lamp{Busy, PeerOf(talking, domain)}
	}
	for i := range dialogs {
		if d := &dialogs[i]; !d.Terminated() && early(d) {
			return Lamp{Calling, PeerOf(d, domain)}
		}
	}
	if p.Basic == pidf.Closed {
		return Lamp{State: Offline}
	}
	if onThePhone {
		if holdWord.MatchString(p.Note) {
			return Lamp{State: Hold}
		}
		return Lamp{State: Busy}
	}
	return Lamp{State: Idle}
}

var renderingInURI = regexp.MustCompile(`(?i);\+sip\.rendering="?([a-z]+)"?`)

// onHold reports whether the local party has the dialog on hold: its
// target's +sip.rendering is "no" (a <param> or the Contact feature-tag
// form inside the URI, RFC 3840).
func onHold(d *dialoginfo.Dialog) bool {
	for _, p := range d.LocalParams {
		if strings.EqualFold(p.Name, "+sip.rendering") {
			return strings.EqualFold(strings.Trim(p.Value, `"`), "no")
		}
	}
	if m := renderingInURI.FindStringSubmatch(d.LocalTarget); m != nil {
		return strings.EqualFold(m[1], "no")
	}
	return false
}

// PeerOf names a dialog's remote party: "Display (user)", the display
// name alone, or the URI without "sip:" and parameters; "@domain" is left
// out when it is the watched entity's own.
func PeerOf(d *dialoginfo.Dialog, domain string) string {
	uri := d.RemoteIdentity
	if uri == "" {
		uri = d.RemoteTarget
	}
	if len(uri) >= 4 && strings.EqualFold(uri[:4], "sip:") {
		uri = uri[4:]
	} else if len(uri) >= 5 && strings.EqualFold(uri[:5], "sips:") {
		uri = uri[5:]
	}
	if i := strings.IndexAny(uri, ";?"); i >= 0 {
		uri = uri[:i]
	}
	if own := "@" + domain; domain != "" && len(uri) >= len(own) && strings.EqualFold(uri[len(uri)-len(own):], own) {
		uri = uri[:len(uri)-len(own)]
	}
	switch {
	case d.RemoteDisplay != "" && uri != "":
		return d.RemoteDisplay + " (" + uri + ")"
	case d.RemoteDisplay != "":
		return d.RemoteDisplay
	}
	return uri
}

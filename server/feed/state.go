package feed

import (
	"encoding/json"
	"time"

	"github.com/presencehub/presencehub/compositor"
)

// Packages select what a client asked for (?event=): dialog, presence or both.
type Packages uint8

// The event packages a feed can carry.
const (
	Dialog         Packages = 1 << iota // RFC 4235 dialog state
	Presence                            // RFC 3863 presence
	MessageSummary                      // RFC 3842 message waiting
	all            = Dialog | Presence | MessageSummary
)

// ResourceState is the JSON of one resource in a snapshot or a state event
// (docs/protocol.md, "State feed").
type ResourceState struct {
	Resource string        `json:"resource"`           // the AOR, sip:1001@example.com
	Ext      string        `json:"ext"`                // its user part
	Lamp     string        `json:"lamp"`               // idle, ringing, calling, busy, hold, offline; "rejected" for a list member the token may not watch
	Peer     string        `json:"peer,omitempty"`     // the other party of the call that decided the lamp
	Dialogs  []DialogJSON  `json:"dialogs,omitempty"`  // with event dialog: the live dialogs, sorted by id
	Presence *PresenceJSON `json:"presence,omitempty"` // with event presence
	Messages *Messages     `json:"messages,omitempty"` // with event message-summary, once anything was published for it
}

// DialogJSON is one live dialog.
type DialogJSON struct {
	ID             string    `json:"id"`
	Direction      string    `json:"direction,omitempty"` // initiator (the extension called) or recipient (it is called)
	State          string    `json:"state"`               // trying, proceeding, early, confirmed
	RemoteIdentity string    `json:"remote_identity,omitempty"`
	RemoteDisplay  string    `json:"remote_display,omitempty"`
	Hold           bool      `json:"hold,omitempty"` // the extension has it on hold
	Start          time.Time `json:"start"`          // when the dialog entered its state: the hub's <since> stamp (docs/protocol.md)
}

// PresenceJSON is the presence of the resource.
type PresenceJSON struct {
	Basic      string   `json:"basic"` // open, closed, or "" without tuples
	Note       string   `json:"note,omitempty"`
	Activities []string `json:"activities,omitempty"`
}

// Messages are the message-summary counts (RFC 3842 §5.2), summed over
// message classes.
type Messages struct {
	Waiting bool `json:"waiting"`
	New     int  `json:"new"`
	Old     int  `json:"old"`
}

// render is the JSON of a tracked resource for the packages pk.
func (r *resource) render(pk Packages) []byte {
	st := ResourceState{Resource: r.aor, Ext: r.ext}
	var dialogs = r.dialog.Dialogs
	var pres Status
	if pk&Presence != 0 {
		pres = r.pres
		st.Presence = &PresenceJSON{Basic: pres.Basic, Note: pres.Note, Activities: pres.Activities}
	}
	if pk&Dialog == 0 {
		dialogs = nil
	} else {
		st.Dialogs = make([]DialogJSON, 0, len(dialogs))
		for i := range dialogs {
			d := &dialogs[i]
			st.Dialogs = append(st.Dialogs, DialogJSON{ID: d.ID, Direction: d.Direction, State: d.State,
				RemoteIdentity: d.RemoteIdentity, RemoteDisplay: d.RemoteDisplay, Hold: onHold(d), Start: r.starts[d.ID]})
		}
	}
	if ms := r.msgView.Summary; pk&MessageSummary != 0 && ms != nil && r.msgView.Rev != 0 {
		st.Messages = &Messages{Waiting: ms.Waiting}
		for _, c := range ms.Counts {
			st.Messages.New += c.New
			st.Messages.Old += c.Old
		}
	}
	l := LampOf(r.aor, dialogs, pres)
	st.Lamp, st.Peer = l.State, l.Peer
	b, err := json.Marshal(st)
	if err != nil { // plain strings, bools and times: cannot happen
		panic("feed: marshal state: " + err.Error())
	}
	return b
}

// rejected is the JSON of a list member the token may not watch.
func rejected(aor, ext string) []byte {
	b, _ := json.Marshal(ResourceState{Resource: aor, Ext: ext, Lamp: "rejected"})
	return b
}

// viewOf returns the tracked view of event ev.
func (r *resource) viewOf(ev string) compositor.View {
	switch ev {
	case compositor.EventPresence:
		return r.presView
	case compositor.EventMessageSummary:
		return r.msgView
	}
	return r.dialog
}

package feed_test

import (
	"testing"

	"github.com/presencehub/presencehub/compositor/dialoginfo"
	"github.com/presencehub/presencehub/compositor/pidf"
	"github.com/presencehub/presencehub/server/feed"
)

// The lamp rules are the console's (web/static/blf.js lampOf): the same
// cases, first match wins.
func TestLampOf_TheConsoleRules(t *testing.T) {
	const entity = "sip:1001@hub.test"
	d := func(id, dir, state, remote, display string, params ...dialoginfo.Param) dialoginfo.Dialog {
		return dialoginfo.Dialog{ID: id, Direction: dir, State: state, RemoteIdentity: remote, RemoteDisplay: display, LocalParams: params}
	}
	held := dialoginfo.Param{Name: "+sip.rendering", Value: "no"}
	open := feed.Status{Basic: pidf.Open}
	onPhone := feed.Status{Basic: pidf.Open, Activities: []string{"on-the-phone"}}
	tests := []struct {
		name    string
		dialogs []dialoginfo.Dialog
		p       feed.Status
		want    feed.Lamp
	}{
		{"nothing", nil, feed.Status{}, feed.Lamp{State: feed.Idle}},
		{"open presence", nil, open, feed.Lamp{State: feed.Idle}},
		{"closed presence", nil, feed.Status{Basic: pidf.Closed}, feed.Lamp{State: feed.Offline}},
		{"ringing, caller in the domain", []dialoginfo.Dialog{d("a", "recipient", "early", "sip:2001@hub.test", "Alice")}, open, feed.Lamp{feed.Ringing, "Alice (2001)"}},
		{"ringing without direction", []dialoginfo.Dialog{d("a", "", "proceeding", "sip:bob@example.com;user=phone", "")}, open, feed.Lamp{feed.Ringing, "bob@example.com"}},
		{"ringing wins over a call", []dialoginfo.Dialog{d("a", "recipient", "confirmed", "sip:2001@hub.test", ""), d("b", "recipient", "trying", "sip:2002@hub.test", "")}, open, feed.Lamp{feed.Ringing, "2002"}},
		{"ringing wins over closed presence", []dialoginfo.Dialog{d("a", "recipient", "early", "", "Carol")}, feed.Status{Basic: pidf.Closed}, feed.Lamp{feed.Ringing, "Carol"}},
		{"calling", []dialoginfo.Dialog{d("a", "initiator", "early", "sip:2001@hub.test", "")}, open, feed.Lamp{feed.Calling, "2001"}},
		{"busy", []dialoginfo.Dialog{d("a", "initiator", "confirmed", "sips:2001@hub.test", "")}, open, feed.Lamp{feed.Busy, "2001"}},
		{"busy wins over calling", []dialoginfo.Dialog{d("a", "initiator", "early", "", ""), d("b", "recipient", "confirmed", "sip:9@x.test", "")}, open, feed.Lamp{feed.Busy, "9@x.test"}},
		{"hold: every confirmed dialog held", []dialoginfo.Dialog{d("a", "recipient", "confirmed", "sip:2001@hub.test", "", held)}, open, feed.Lamp{feed.Hold, "2001"}},
		{"busy: one held, one talking", []dialoginfo.Dialog{d("a", "recipient", "confirmed", "sip:2001@hub.test", "", held), d("b", "recipient", "confirmed", "sip:2002@hub.test", "")}, open, feed.Lamp{feed.Busy, "2002"}},
		{"hold by presence note", []dialoginfo.Dialog{d("a", "recipient", "confirmed", "sip:2001@hub.test", "")}, feed.Status{Basic: pidf.Open, Note: "On Hold", Activities: onPhone.Activities}, feed.Lamp{feed.Hold, "2001"}},
		{"a note without on-the-phone is no hold", []dialoginfo.Dialog{d("a", "recipient", "confirmed", "sip:2001@hub.test", "")}, feed.Status{Basic: pidf.Open, Note: "hold"}, feed.Lamp{feed.Busy, "2001"}},
		{"on the phone, presence only", nil, onPhone, feed.Lamp{State: feed.Busy}},
		{"on hold, presence only", nil, feed.Status{Basic: pidf.Open, Note: "call on hold", Activities: onPhone.Activities}, feed.Lamp{State: feed.Hold}},
		{"threshold is not hold", nil, feed.Status{Basic: pidf.Open, Note: "threshold", Activities: onPhone.Activities}, feed.Lamp{State: feed.Busy}},
		{"closed wins over on-the-phone", nil, feed.Status{Basic: pidf.Closed, Activities: onPhone.Activities}, feed.Lamp{State: feed.Offline}},
		{"terminated dialogs are ignored", []dialoginfo.Dialog{d("a", "recipient", "terminated", "", "")}, feed.Status{Basic: pidf.Closed}, feed.Lamp{State: feed.Offline}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := feed.LampOf(entity, tt.dialogs, tt.p); got.State != tt.want.State || got.Peer != tt.want.Peer {
				t.Errorf("LampOf = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestReadPresence(t *testing.T) {
	doc := &pidf.Document{
		Tuples: []pidf.Tuple{{ID: "a", Basic: pidf.Closed, Notes: []pidf.Note{{Text: " tuple note "}}}, {ID: "b", Basic: pidf.Open}},
		Notes:  []pidf.Note{{Text: "document note"}},
		Persons: []pidf.Element{{Local: "person", Children: []pidf.Element{
			{Local: "activities", Children: []pidf.Element{{Local: "on-the-phone"}, {Local: "note", Text: "x"}}},
			{Local: "note", Text: "person note"},
		}}},
	}
	p := feed.ReadPresence(doc)
	if p.Basic != pidf.Open || p.Note != "person note" || len(p.Activities) != 1 || p.Activities[0] != "on-the-phone" {
		t.Errorf("ReadPresence = %+v", p)
	}
	doc.Persons = nil
	if p := feed.ReadPresence(doc); p.Note != "tuple note" || p.Activities != nil {
		t.Errorf("without a person: %+v, want the tuple note", p)
	}
	if p := feed.ReadPresence(&pidf.Document{Tuples: []pidf.Tuple{{ID: "a"}}}); p.Basic != "" {
		t.Errorf("a tuple without basic: %+v", p)
	}
}

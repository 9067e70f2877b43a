package loadgen

import (
	"testing"
	"time"

	"github.com/presencehub/presencehub/compositor/dialoginfo"
)

// checkSub is a subscriber with one subscription to resource 0, fed by hand.
func checkSub(t *testing.T) *subscriber {
	t.Helper()
	r := &run{cfg: Config{Domain: "bench.test", Prefix: "bench", Resources: 1}, id: "r1", start: time.Now()}
	r.prepare()
	s := &subscriber{r: r, subs: []subscription{{resource: 0}}}
	s.subs[0].callID = s.callID(0)
	s.subs[0].accepted = true
	return s
}

// notify feeds s a NOTIFY with dialog-info version ver showing sequence seq
// (0: no dialog).
func (s *subscriber) notify(t *testing.T, ver, seq uint64, subState string) {
	t.Helper()
	doc := dialoginfo.Document{Version: ver, State: "full", Entity: s.r.aor(0)}
	if seq > 0 {
		doc.Dialogs = []dialoginfo.Dialog{{ID: "d", State: states[seq%2],
			LocalTarget: "sip:x@bench.invalid;ts=" + itoa(int(seq)*1000) + ";seq=" + itoa(int(seq))}}
	}
	body := string(doc.AppendXML(nil))
	raw := "NOTIFY sip:a@b.invalid SIP/2.0\r\nVia: SIP/2.0/WS h;branch=z9hG4bK1\r\nCall-ID: " + s.subs[0].callID +
		"\r\nCSeq: 1 NOTIFY\r\nSubscription-State: " + subState + "\r\nContent-Length: " + itoa(len(body)) + "\r\n\r\n" + body
	var m message
	if !parseMessage([]byte(raw), &m) {
		t.Fatal("test NOTIFY does not parse")
	}
	s.onNotify(&m, time.Since(s.r.start))
}

func TestSubscriberChecks(t *testing.T) {
	type note struct {
		ver, seq uint64
		state    string
	}
	active := "active;expires=100"
	tests := []struct {
		name  string
		notes []note
		want  checks
	}{
		{"in order, +1 versions: clean", []note{{0, 0, active}, {1, 1, active}, {2, 3, active}, {3, 4, active}}, checks{}},
		{"version gap counted", []note{{0, 0, active}, {1, 1, active}, {3, 2, active}}, checks{VersionErrors: 1}},
		{"version repeated counted", []note{{0, 0, active}, {0, 1, active}}, checks{VersionErrors: 1}},
		{"same body twice counted as duplicate", []note{{0, 0, active}, {1, 2, active}, {2, 2, active}}, checks{DuplicateBodies: 1}},
		{"older state after newer counted", []note{{0, 0, active}, {1, 5, active}, {2, 4, active}}, checks{OutOfOrder: 1}},
		{"terminated during the run counted", []note{{0, 0, active}, {1, 1, "terminated;reason=timeout"}}, checks{UnexpectedTerminated: 1}},
		{"final NOTIFY may repeat the body", []note{{0, 0, active}, {1, 1, active}, {2, 1, "terminated;reason=deactivated"}}, checks{UnexpectedTerminated: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := checkSub(t)
			for _, n := range tt.notes {
				s.notify(t, n.ver, n.seq, n.state)
			}
			if s.c != tt.want {
				t.Errorf("checks = %+v, want %+v", s.c, tt.want)
			}
			if !s.subs[0].initial || s.ready != 1 {
				t.Errorf("initial %v ready %d", s.subs[0].initial, s.ready)
			}
		})
	}
}

func TestSubscriberChecks_LatencyFromNewStatesOnly(t *testing.T) {
	s := checkSub(t)
	s.notify(t, 0, 3, "active") // first NOTIFY: state published before subscribing, no sample
	s.notify(t, 1, 4, "active")
	s.notify(t, 2, 5, "active")
	if s.lat.n != 2 {
		t.Errorf("latency samples = %d, want 2", s.lat.n)
	}
	if s.subs[0].lastSeq != 5 || string(s.subs[0].lastState) != states[1] {
		t.Errorf("last seq %d state %s", s.subs[0].lastSeq, s.subs[0].lastState)
	}
}

func TestSubscriberChecks_WrongEntityAndUnknownDialog(t *testing.T) {
	s := checkSub(t)
	body := string((&dialoginfo.Document{State: "full", Entity: "sip:other@bench.test"}).AppendXML(nil))
	raw := "NOTIFY sip:a@b SIP/2.0\r\nCall-ID: " + s.subs[0].callID + "\r\nCSeq: 1 NOTIFY\r\nContent-Length: " +
		itoa(len(body)) + "\r\n\r\n" + body
	var m message
	parseMessage([]byte(raw), &m)
	s.onNotify(&m, 0)
	m.callID = []byte("r1-s0-9")
	s.onNotify(&m, 0)
	if s.c.WrongEntity != 1 || s.c.Malformed != 1 {
		t.Errorf("checks = %+v", s.c)
	}
}

func TestSubscriberChecks_BodyWithoutVersionIsMalformed(t *testing.T) {
	s := checkSub(t)
	body := `<?xml version="1.0"?>` + "\n" + `<dialog-info state="full" entity="` + s.r.aor(0) + `"></dialog-info>`
	raw := "NOTIFY sip:a@b SIP/2.0\r\nCall-ID: " + s.subs[0].callID + "\r\nCSeq: 1 NOTIFY\r\nContent-Length: " +
		itoa(len(body)) + "\r\n\r\n" + body
	var m message
	if !parseMessage([]byte(raw), &m) {
		t.Fatal("test NOTIFY does not parse")
	}
	s.onNotify(&m, 0)
	if s.c != (checks{Malformed: 1}) {
		t.Errorf("checks = %+v, want one malformed", s.c)
	}
}

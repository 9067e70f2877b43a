package loadgen

import (
	"bytes"
	"strings"
	"testing"

	"github.com/emiago/sipgo/sip"
	"github.com/presencehub/presencehub/compositor/dialoginfo"
)

// A NOTIFY as the hub's notifier builds it (server/notifier build()).
const hubNotify = "NOTIFY sip:bench-s0@abc.invalid;transport=ws SIP/2.0\r\n" +
	"Via: SIP/2.0/WS bench.test;branch=z9hG4bKabcdefgh12345678\r\n" +
	"Max-Forwards: 70\r\n" +
	"From: <sip:bench7@bench.test>;tag=hubtag\r\n" +
	"To: <sip:bench-s0@bench.test>;tag=mytag\r\n" +
	"Call-ID: run1-s0-7\r\n" +
	"Contact: <sip:presencehub@bench.test;transport=ws>\r\n" +
	"Event: dialog\r\n" +
	"CSeq: 3 NOTIFY\r\n" +
	"Subscription-State: active;expires=3599\r\n" +
	"Content-Type: application/dialog-info+xml\r\n" +
	"Content-Length: %d\r\n\r\n%s"

func notifyWith(body string) []byte {
	return []byte(strings.Replace(strings.Replace(hubNotify, "%d", itoa(len(body)), 1), "%s", body, 1))
}

func itoa(n int) string { return string(appendInt(nil, n)) }

func appendInt(b []byte, n int) []byte {
	if n >= 10 {
		b = appendInt(b, n/10)
	}
	return append(b, byte('0'+n%10))
}

func TestParseMessage_Notify_AnswerParsesAndMatches(t *testing.T) {
	body := "<dialog-info/>"
	var m message
	if !parseMessage(notifyWith(body), &m) {
		t.Fatal("parse failed")
	}
	if !m.request || string(m.method) != "NOTIFY" || string(m.callID) != "run1-s0-7" || m.cseqNum != 3 ||
		string(m.cseqMeth) != "NOTIFY" || string(m.subState) != "active;expires=3599" || string(m.body) != body {
		t.Fatalf("parsed %+v", m)
	}
	ok := appendOK(nil, &m)
	msg, err := sip.ParseMessage(ok) // the hub parses answers with sipgo
	if err != nil {
		t.Fatalf("200 does not parse: %v\n%s", err, ok)
	}
	res := msg.(*sip.Response)
	if res.StatusCode != 200 || res.CallID().Value() != "run1-s0-7" || res.CSeq().SeqNo != 3 {
		t.Fatalf("200 = %s", ok)
	}
	if b, _ := res.Via().Params.Get("branch"); b != "z9hG4bKabcdefgh12345678" {
		t.Errorf("branch = %q", b)
	}
	if tag, _ := res.To().Params.Get("tag"); tag != "mytag" {
		t.Errorf("To tag = %q", tag)
	}
}

func TestParseMessage_CompactHeadersAndResponse(t *testing.T) {
	msg := "SIP/2.0 200 OK\r\nv: SIP/2.0/WS x.invalid;branch=z9hG4bK1\r\nf: <sip:a@b>;tag=1\r\nt: <sip:a@b>;tag=2\r\n" +
		"i: cid-9\r\nCSEQ: 12 PUBLISH\r\nsip-etag: e123\r\nl: 0\r\n\r\n"
	var m message
	if !parseMessage([]byte(msg), &m) {
		t.Fatal("parse failed")
	}
	if m.request || m.status != 200 || string(m.callID) != "cid-9" || m.cseqNum != 12 || string(m.cseqMeth) != "PUBLISH" || string(m.etag) != "e123" {
		t.Fatalf("parsed %+v", m)
	}
}

func TestParseMessage_Garbage_Refused(t *testing.T) {
	for _, in := range []string{"", "SIP/2.0 2", "NOTIFY x SIP/2.0\r\nVia: a\r\n", "nonsense\r\n\r\n", "X y\r\nno colon\r\n\r\n"} {
		var m message
		if parseMessage([]byte(in), &m) {
			t.Errorf("parsed %q", in)
		}
	}
}

func TestAppendRequests_ParseWithSipgo(t *testing.T) {
	u := newUA("bench.test", "bench-p0")
	body := appendDialogBody(nil, "bench.test", "bench3", 7, 123456789)
	for name, raw := range map[string][]byte{
		"SUBSCRIBE": u.appendSubscribe(nil, "bench3", "cid-1", 3600),
		"PUBLISH":   u.appendPublish(nil, "bench3", "cid-2", 5, "etag-1", 3600, body),
	} {
		msg, err := sip.ParseMessage(raw)
		if err != nil {
			t.Fatalf("%s does not parse: %v\n%s", name, err, raw)
		}
		req := msg.(*sip.Request)
		if string(req.Method) != name || req.Recipient.User != "bench3" || req.Recipient.Host != "bench.test" {
			t.Errorf("%s: request line %s %s", name, req.Method, req.Recipient.String())
		}
		if ev := req.GetHeader("Event"); ev == nil || ev.Value() != "dialog" {
			t.Errorf("%s: Event %v", name, ev)
		}
	}
	if a, b := u.appendVia(nil), u.appendVia(nil); bytes.Equal(a, b) {
		t.Error("two Vias with the same branch")
	}
}

func TestAppendDialogBody_ValidRFC4235AndReadBack(t *testing.T) {
	body := appendDialogBody(nil, "bench.test", "bench3", 8, 987654321)
	doc, err := dialoginfo.Parse(body, dialoginfo.Limits{})
	if err != nil {
		t.Fatalf("body does not parse: %v\n%s", err, body)
	}
	if doc.Entity != "sip:bench3@bench.test" || len(doc.Dialogs) != 1 || doc.Dialogs[0].State != states[8%2] {
		t.Fatalf("doc = %+v", doc)
	}
	// What the hub renders for it (version 42): the generator reads it back.
	doc.Version = 42
	var d dialogBody
	parseDialogBody(doc.AppendXML(nil), "sip:bench3@bench.test", &d)
	if !d.hasVer || d.version != 42 || !d.entityOK || d.seq != 8 || d.sentNs != 987654321 || string(d.state) != states[0] {
		t.Fatalf("read back %+v", d)
	}
	var other dialogBody
	doc.Version = 43
	parseDialogBody(doc.AppendXML(nil), "sip:bench3@bench.test", &other)
	if other.hash != d.hash {
		t.Error("hash depends on version")
	}
	parseDialogBody(doc.AppendXML(nil), "sip:bench30@bench.test", &other)
	if other.entityOK {
		t.Error("entity sip:bench3 accepted for sip:bench30")
	}
	doc.Dialogs[0].State = "confirmed"
	parseDialogBody(doc.AppendXML(nil), "sip:bench3@bench.test", &other)
	if other.hash == d.hash {
		t.Error("different bodies, same hash")
	}
}

func TestParseDialogBody_NoDialogs(t *testing.T) {
	doc := dialoginfo.Document{Version: 0, State: "full", Entity: "sip:b@x"}
	var d dialogBody
	parseDialogBody(doc.AppendXML(nil), "sip:b@x", &d)
	if !d.hasVer || d.version != 0 || d.seq != 0 || d.sentNs != 0 || !d.entityOK {
		t.Fatalf("%+v", d)
	}
}

func BenchmarkNotifyAnswer(b *testing.B) {
	body := appendDialogBody(nil, "bench.test", "bench3", 8, 987654321)
	msg := notifyWith(string(body))
	var out []byte
	b.ReportAllocs()
	b.SetBytes(int64(len(msg)))
	for b.Loop() {
		var m message
		var d dialogBody
		parseMessage(msg, &m)
		out = appendOK(out[:0], &m)
		parseDialogBody(m.body, "sip:bench3@bench.test", &d)
	}
}

func TestParseDialogBody_VersionAndEntityOnlyFromTheRootTag(t *testing.T) {
	const aor = "sip:b@x"
	tests := []struct {
		name     string
		body     string
		hasVer   bool
		entityOK bool
		seq      uint64
	}{
		{"root attributes", `<?xml version="1.0"?><dialog-info version="7" entity="sip:b@x"></dialog-info>`, true, true, 0},
		{"the declaration's version is not the document's", `<?xml version="1.0"?><dialog-info entity="sip:b@x"></dialog-info>`, false, true, 0},
		{"a child's attributes are not the root's", `<dialog-info><dialog version="3" entity="sip:b@x"/></dialog-info>`, false, false, 0},
		{"entity must end at the quote", `<dialog-info version="1" entity="sip:b@xy"></dialog-info>`, true, false, 0},
		{"seq without ts", `<dialog-info version="1" entity="sip:b@x"><dialog id="d"><state>early</state><local><target uri="sip:a@h;seq=12"/></local></dialog></dialog-info>`, true, true, 12},
		{"seq apart from ts", `<dialog-info version="1" entity="sip:b@x"><dialog id="d"><state>early</state><local><target uri="sip:a@h;ts=5;x=1;seq=13"/></local></dialog></dialog-info>`, true, true, 13},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var d dialogBody
			parseDialogBody([]byte(tt.body), aor, &d)
			if d.hasVer != tt.hasVer || d.entityOK != tt.entityOK || d.seq != tt.seq {
				t.Errorf("hasVer %v entityOK %v seq %d; want %v %v %d", d.hasVer, d.entityOK, d.seq, tt.hasVer, tt.entityOK, tt.seq)
			}
		})
	}
}

package pidf_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/presencehub/presencehub/compositor/internal/xmltree"
	"github.com/presencehub/presencehub/compositor/pidf"
)

// From testdata/wire/*/07-c2s-PUBLISH_presence.sip (JsSIP and SIP.js).
const wireOpen = `<?xml version="1.0" encoding="UTF-8"?>
<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:1001@hub.test"><tuple id="t1"><status><basic>open</basic></status></tuple></presence>`

const wireClosed = `<?xml version="1.0" encoding="UTF-8"?>
<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:1001@hub.test"><tuple id="t1"><status><basic>closed</basic></status></tuple></presence>`

const rpid = `<?xml version="1.0" encoding="UTF-8"?>
<presence xmlns="urn:ietf:params:xml:ns:pidf" xmlns:dm="urn:ietf:params:xml:ns:pidf:data-model"
 xmlns:r="urn:ietf:params:xml:ns:pidf:rpid" xmlns:x="urn:example:ext" entity="pres:1001@hub.test">
 <tuple id="a"><status><basic>open</basic><x:extra>1</x:extra></status><x:cap x:weird="dropped" plain="kept"/>
  <contact priority="1">sip:1001@a.invalid</contact><note xml:lang="de">Hallo &lt;Welt&gt;</note><timestamp>2030-01-01T00:00:00Z</timestamp></tuple>
 <note>top</note>
 <dm:person id="p"><r:activities><r:on-the-phone/></r:activities></dm:person>
 <dm:device id="d"><dm:deviceID>urn:uuid:1</dm:deviceID></dm:device>
</presence>`

func TestParse_WireCapture(t *testing.T) {
	d, err := pidf.Parse([]byte(wireOpen), pidf.Limits{})
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if d.Entity != "sip:1001@hub.test" || len(d.Tuples) != 1 || d.Tuples[0].ID != "t1" || d.Tuples[0].Basic != pidf.Open {
		t.Fatalf("doc = %+v", d)
	}
}

func TestParse_RPIDPersonAndExtensions_Kept(t *testing.T) {
	d, err := pidf.Parse([]byte(rpid), pidf.Limits{})
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	out := string(d.AppendXML(nil))
	for _, want := range []string{
		`<dm:person id="p"><rpid:activities><rpid:on-the-phone/></rpid:activities></dm:person>`,
		`<dm:device id="d"><dm:deviceID>urn:uuid:1</dm:deviceID></dm:device>`,
		`<extra xmlns="urn:example:ext">1</extra>`,
		`<cap xmlns="urn:example:ext" plain="kept"/>`,
		`<contact priority="1">sip:1001@a.invalid</contact>`,
		`<note xml:lang="de">Hallo &lt;Welt&gt;</note>`,
		`<note>top</note>`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("rendered document lacks %s\n%s", want, out)
		}
	}
	again, err := pidf.Parse([]byte(out), pidf.Limits{})
	if err != nil {
		t.Fatalf("rendered document does not parse: %v\n%s", err, out)
	}
	if got := string(again.AppendXML(nil)); got != out {
		t.Fatalf("render not stable:\n%s\n%s", out, got)
	}
}

func TestParse_Invalid_Rejected(t *testing.T) {
	for name, body := range map[string]string{
		"NotXML":          `hello`,
		"WrongRoot":       `<dialog-info xmlns="urn:ietf:params:xml:ns:dialog-info"/>`,
		"NoNamespace":     `<presence entity="sip:a@b"/>`,
		"NoEntity":        `<presence xmlns="urn:ietf:params:xml:ns:pidf"/>`,
		"TupleNoID":       `<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:a@b"><tuple><status/></tuple></presence>`,
		"TupleNoStatus":   `<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:a@b"><tuple id="x"/></presence>`,
		"DuplicateTuple":  `<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:a@b"><tuple id="x"><status/></tuple><tuple id="x"><status/></tuple></presence>`,
		"DTD":             `<!DOCTYPE presence [<!ENTITY a "aaaa">]><presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:a@b"/>`,
		"Truncated":       `<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:a@b"><tuple id="x">`,
		"TwoRoots":        `<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:a@b"/><presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:a@b"/>`,
		"UndeclaredPrefx": `<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:a@b"><q:x/></presence>`,
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := pidf.Parse([]byte(body), pidf.Limits{}); err == nil {
				t.Fatalf("Parse accepted %s", body)
			}
		})
	}
}

func TestParse_Limits(t *testing.T) {
	deep := `<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:a@b">` + strings.Repeat(`<x xmlns="urn:x">`, 10) + strings.Repeat(`</x>`, 10) + `</presence>`
	if _, err := pidf.Parse([]byte(deep), pidf.Limits{MaxDepth: 8}); !errors.Is(err, xmltree.ErrTooDeep) {
		t.Fatalf("depth 11 with limit 8: err %v, want ErrTooDeep", err)
	}
	if _, err := pidf.Parse([]byte(deep), pidf.Limits{MaxDepth: 11}); err != nil {
		t.Fatalf("depth 11 with limit 11: %v", err)
	}
	if _, err := pidf.Parse([]byte(wireOpen), pidf.Limits{MaxBytes: 10}); !errors.Is(err, xmltree.ErrTooLarge) {
		t.Fatalf("size limit: err %v, want ErrTooLarge", err)
	}
}

func TestAppendXML_EscapesEverything(t *testing.T) {
	d := pidf.Document{Entity: `sip:"a"&<b>@x`, Tuples: []pidf.Tuple{{ID: "t", Basic: pidf.Open,
		Contact: "sip:a@b?x=1&y=<2>", Notes: []pidf.Note{{Lang: `e"n`, Text: "a\x01b & </note>"}}}}}
	out := d.AppendXML(nil)
	back, err := pidf.Parse(out, pidf.Limits{})
	if err != nil {
		t.Fatalf("escaped output does not parse: %v\n%s", err, out)
	}
	if back.Entity != d.Entity || back.Tuples[0].Contact != d.Tuples[0].Contact ||
		back.Tuples[0].Notes[0].Text != "a\uFFFDb & </note>" || back.Tuples[0].Notes[0].Lang != `e"n` {
		t.Fatalf("round trip = %+v", back)
	}
}

func TestCompose_SameTupleNewestWins_NotesUnited(t *testing.T) {
	a, _ := pidf.Parse([]byte(wireOpen), pidf.Limits{})
	b, _ := pidf.Parse([]byte(wireClosed), pidf.Limits{})
	a.Notes = []pidf.Note{{Text: "n"}}
	b.Notes = []pidf.Note{{Text: "n"}, {Text: "m"}}
	got := pidf.Compose("sip:1001@hub.test", []*pidf.Document{a, b})
	if len(got.Tuples) != 1 || got.Tuples[0].Basic != pidf.Closed || len(got.Notes) != 2 {
		t.Fatalf("composed = %+v", got)
	}
}

func FuzzParsePIDF(f *testing.F) {
	for _, s := range []string{wireOpen, wireClosed, rpid, `<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:a@b"/>`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		d, err := pidf.Parse(data, pidf.Limits{})
		if err != nil {
			return
		}
		r1 := d.AppendXML(nil)
		d2, err := pidf.Parse(r1, pidf.Limits{MaxDepth: 64})
		if err != nil {
			t.Fatalf("rendered document does not parse: %v\n%s", err, r1)
		}
		if r2 := d2.AppendXML(nil); !bytes.Equal(r1, r2) {
			t.Fatalf("render not stable:\n%s\n%s", r1, r2)
		}
	})
}

// basic is open or closed in any case; any other value (baresip publishes
// <basic>unknown</basic>) is a status without basic, not a refusal.
func TestParse_BasicQuirks_Accepted(t *testing.T) {
	for _, tt := range []struct{ name, basic, want string }{
		{"baresip unknown", "unknown", ""},
		{"unlisted word", "busy", ""},
		{"capitalised open", "Open", pidf.Open},
		{"padded CLOSED", " CLOSED ", pidf.Closed},
	} {
		t.Run(tt.name, func(t *testing.T) {
			body := `<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:a@b"><tuple id="x"><status><basic>` + tt.basic + `</basic></status></tuple></presence>`
			doc, err := pidf.Parse([]byte(body), pidf.Limits{})
			if err != nil {
				t.Fatal(err)
			}
			if got := doc.Tuples[0].Basic; got != tt.want {
				t.Fatalf("basic = %q, want %q", got, tt.want)
			}
		})
	}
}

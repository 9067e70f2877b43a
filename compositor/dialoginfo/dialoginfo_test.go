package dialoginfo_test

import (
	"bytes"
	"strconv"
	"strings"
	"testing"

	"github.com/presencehub/presencehub/compositor/dialoginfo"
)

// From testdata/wire/sipjs-node/09-c2s-PUBLISH_dialog.sip.
const wireDialog = `<?xml version="1.0"?>
<dialog-info xmlns="urn:ietf:params:xml:ns:dialog-info" version="0" state="full" entity="sip:1001@hub.test"><dialog id="a1" direction="initiator"><state>confirmed</state></dialog></dialog-info>`

// RFC 4235 §6.2 style example with participants.
const full = `<?xml version="1.0"?>
<dialog-info xmlns="urn:ietf:params:xml:ns:dialog-info" version="7" state="partial" entity="sip:alice@example.com">
  <dialog id="as7d900as8" call-id="a84b4c76e66710" local-tag="1928301774" remote-tag="456887766" direction="initiator">
    <state event="remote-bye" code="486">terminated</state>
    <duration>274</duration>
    <local><identity display="Alice &amp; Co">sip:alice@example.com</identity><target uri="sip:alice@pc33.example.com"><param pname="x" pval="y"/></target></local>
    <remote><identity display="Bob">sip:bob@example.org</identity><target uri="sip:bobster@phone21.example.org"/></remote>
  </dialog>
</dialog-info>`

func TestParse_WireCapture(t *testing.T) {
	d, err := dialoginfo.Parse([]byte(wireDialog), dialoginfo.Limits{})
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if d.Entity != "sip:1001@hub.test" || d.State != "full" || len(d.Dialogs) != 1 ||
		d.Dialogs[0].ID != "a1" || d.Dialogs[0].State != dialoginfo.Confirmed || d.Dialogs[0].Direction != dialoginfo.Initiator {
		t.Fatalf("doc = %+v", d)
	}
}

func TestAppendXML_RFC4235Elements(t *testing.T) {
	d, err := dialoginfo.Parse([]byte(full), dialoginfo.Limits{})
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	d.State = ""
	d.Version = 42
	out := string(d.AppendXML(nil))
	for _, want := range []string{
		`<dialog-info xmlns="urn:ietf:params:xml:ns:dialog-info" version="42" state="full" entity="sip:alice@example.com">`,
		`<dialog id="as7d900as8" call-id="a84b4c76e66710" local-tag="1928301774" remote-tag="456887766" direction="initiator">`,
		`<state event="remote-bye" code="486">terminated</state>`,
		`<local><identity display="Alice &amp; Co">sip:alice@example.com</identity><target uri="sip:alice@pc33.example.com"><param pname="x" pvalue=""/></target></local>`,
		`<remote><identity display="Bob">sip:bob@example.org</identity><target uri="sip:bobster@phone21.example.org"/></remote>`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %s\n%s", want, out)
		}
	}
}

func TestAppendTemplate_VersionSlot_SameBytesAsAppendXML(t *testing.T) {
	d, err := dialoginfo.Parse([]byte(full), dialoginfo.Limits{})
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	for _, tc := range []struct {
		name    string
		doc     dialoginfo.Document
		version uint64
	}{
		{"no dialogs", dialoginfo.Document{Entity: "sip:a@b"}, 0},
		{"entity to escape", dialoginfo.Document{Entity: `sip:"a"&<b>@c`, State: dialoginfo.Partial}, 7},
		{"RFC 4235 example", *d, 18446744073709551615},
	} {
		t.Run(tc.name, func(t *testing.T) {
			prefix := []byte("prefix")
			tmpl, at := tc.doc.AppendTemplate(prefix)
			if string(tmpl[at-len(`version="`):at+1]) != `version=""` {
				t.Fatalf("slot at %d is not inside version=\"\": %q", at, tmpl)
			}
			got := append(append(append([]byte{}, tmpl[:at]...), strconv.FormatUint(tc.version, 10)...), tmpl[at:]...)
			tc.doc.Version = tc.version
			if want := tc.doc.AppendXML([]byte("prefix")); !bytes.Equal(got, want) {
				t.Fatalf("template with version inserted:\n%s\nAppendXML:\n%s", got, want)
			}
		})
	}
}

func TestParse_Invalid_Rejected(t *testing.T) {
	const head = `<dialog-info xmlns="urn:ietf:params:xml:ns:dialog-info" version="1" state="full" entity="sip:a@b">`
	for name, body := range map[string]string{
		"NoVersion":     `<dialog-info xmlns="urn:ietf:params:xml:ns:dialog-info" state="full" entity="sip:a@b"/>`,
		"BadVersion":    `<dialog-info xmlns="urn:ietf:params:xml:ns:dialog-info" version="-1" state="full" entity="sip:a@b"/>`,
		"BadState":      `<dialog-info xmlns="urn:ietf:params:xml:ns:dialog-info" version="1" state="some" entity="sip:a@b"/>`,
		"NoEntity":      `<dialog-info xmlns="urn:ietf:params:xml:ns:dialog-info" version="1" state="full"/>`,
		"DialogNoID":    head + `<dialog><state>early</state></dialog></dialog-info>`,
		"DialogNoState": head + `<dialog id="x"/></dialog-info>`,
		"BadDialogSt":   head + `<dialog id="x"><state>ringing</state></dialog></dialog-info>`,
		"BadDirection":  head + `<dialog id="x" direction="up"><state>early</state></dialog></dialog-info>`,
		"BadCode":       head + `<dialog id="x"><state code="abc">terminated</state></dialog></dialog-info>`,
		"DuplicateID":   head + `<dialog id="x"><state>early</state></dialog><dialog id="x"><state>early</state></dialog></dialog-info>`,
		"Truncated":     head + `<dialog id="x">`,
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := dialoginfo.Parse([]byte(body), dialoginfo.Limits{}); err == nil {
				t.Fatalf("Parse accepted %s", body)
			}
		})
	}
}

func FuzzParseDialogInfo(f *testing.F) {
	for _, s := range []string{wireDialog, full} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		d, err := dialoginfo.Parse(data, dialoginfo.Limits{})
		if err != nil {
			return
		}
		r1 := d.AppendXML(nil)
		d2, err := dialoginfo.Parse(r1, dialoginfo.Limits{})
		if err != nil {
			t.Fatalf("rendered document does not parse: %v\n%s", err, r1)
		}
		if r2 := d2.AppendXML(nil); !bytes.Equal(r1, r2) {
			t.Fatalf("render not stable:\n%s\n%s", r1, r2)
		}
	})
}

// Hold is signalled by +sip.rendering=no on the local target (RFC 4235
// §4.1.6.2); the parameter survives parse and render.
func TestTargetParams_RoundTrip(t *testing.T) {
	in := []byte(`<dialog-info xmlns="urn:ietf:params:xml:ns:dialog-info" version="0" state="full" entity="sip:1001@hub.test">` +
		`<dialog id="d1"><state>confirmed</state><local><identity>sip:1001@hub.test</identity>` +
		`<target uri="sip:1001@10.0.0.1"><param pname="+sip.rendering" pvalue="no"/></target></local></dialog></dialog-info>`)
	doc, err := dialoginfo.Parse(in, dialoginfo.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if got := doc.Dialogs[0].LocalParams; len(got) != 1 || got[0] != (dialoginfo.Param{Name: "+sip.rendering", Value: "no"}) {
		t.Fatalf("params = %v", got)
	}
	out := doc.AppendXML(nil)
	if !bytes.Contains(out, []byte(`<target uri="sip:1001@10.0.0.1"><param pname="+sip.rendering" pvalue="no"/></target>`)) {
		t.Fatalf("rendered: %s", out)
	}
}

// Publishers write enumerated values in other cases (Kamailio's
// pua_dialoginfo sends <state>Trying</state>): accepted, kept lower-case.
func TestParse_EnumeratedValuesAnyCase_AcceptedLowerCase(t *testing.T) {
	for _, tt := range []struct {
		name, body                    string
		docState, dir, state, stEvent string
	}{
		{"Kamailio caller Trying",
			`<dialog-info xmlns="urn:ietf:params:xml:ns:dialog-info" version="0" state="full" entity="sip:1002@hub.test"><dialog id="d" direction="initiator"><state>Trying</state></dialog></dialog-info>`,
			"full", "initiator", "trying", ""},
		{"upper-case document state and direction",
			`<dialog-info xmlns="urn:ietf:params:xml:ns:dialog-info" version="1" state="FULL" entity="sip:a@b"><dialog id="d" direction="Recipient"><state> Early </state></dialog></dialog-info>`,
			"full", "recipient", "early", ""},
		{"terminated with an event attribute in capitals",
			`<dialog-info xmlns="urn:ietf:params:xml:ns:dialog-info" version="1" state="Partial" entity="sip:a@b"><dialog id="d"><state event="Remote-Bye">TERMINATED</state></dialog></dialog-info>`,
			"partial", "", "terminated", "remote-bye"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			d, err := dialoginfo.Parse([]byte(tt.body), dialoginfo.Limits{})
			if err != nil {
				t.Fatal(err)
			}
			dl := d.Dialogs[0]
			if d.State != tt.docState || dl.Direction != tt.dir || dl.State != tt.state || dl.Event != tt.stEvent {
				t.Fatalf("got state=%q direction=%q dialog state=%q event=%q", d.State, dl.Direction, dl.State, dl.Event)
			}
			if !strings.Contains(string(d.AppendXML(nil)), ">"+tt.state+"</state>") {
				t.Fatalf("rendered %s", d.AppendXML(nil))
			}
		})
	}
}

// A refused body says which value is wrong and what is allowed.
func TestParse_UnknownDialogState_ReasonNamesTheValue(t *testing.T) {
	_, err := dialoginfo.Parse([]byte(`<dialog-info xmlns="urn:ietf:params:xml:ns:dialog-info" version="1" state="full" entity="sip:a@b"><dialog id="x"><state>ringing</state></dialog></dialog-info>`), dialoginfo.Limits{})
	if err == nil || !strings.Contains(err.Error(), `"ringing"`) || !strings.Contains(err.Error(), "is none of trying, proceeding, early, confirmed, terminated") {
		t.Fatalf("err = %v", err)
	}
}

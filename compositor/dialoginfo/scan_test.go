package dialoginfo

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/presencehub/presencehub/compositor/internal/xmltree"
)

// capturedDialogBodies are the dialog-info bodies of the captured PUBLISHes
// under the repository's testdata (browsers, Node clients, a PBX).
func capturedDialogBodies(tb testing.TB) map[string][]byte {
	tb.Helper()
	out := map[string][]byte{}
	for _, pattern := range []string{"../../testdata/wire/*/*PUBLISH_dialog*.sip", "../../testdata/pbx/*dialoginfo*.sip"} {
		files, _ := filepath.Glob(pattern)
		for _, f := range files {
			data, err := os.ReadFile(f)
			if err != nil {
				tb.Fatal(err)
			}
			data = bytes.ReplaceAll(data, []byte("\r\n"), []byte("\n"))
			if _, body, ok := bytes.Cut(data, []byte("\n\n")); ok && len(bytes.TrimSpace(body)) > 0 {
				out[filepath.Base(filepath.Dir(f))+"/"+filepath.Base(f)] = body
			}
		}
	}
	if len(out) < 2 {
		tb.Fatalf("found %d captured dialog-info bodies under testdata", len(out))
	}
	return out
}

const head = `<dialog-info xmlns="urn:ietf:params:xml:ns:dialog-info" version="1" state="full" entity="sip:a@b">`

// scannedBodies are bodies the scanner must read itself.
var scannedBodies = map[string]string{
	"RFC 4235 example": `<?xml version="1.0"?>
<dialog-info xmlns="urn:ietf:params:xml:ns:dialog-info" version="7" state="partial" entity="sip:alice@example.com">
  <dialog id="as7d900as8" call-id="a84b4c76e66710" local-tag="1928301774" remote-tag="456887766" direction="initiator">
    <state event="remote-bye" code="486">terminated</state>
    <duration>274</duration>
    <local><identity display="Alice &amp; Co">sip:alice@example.com</identity><target uri="sip:alice@pc33.example.com"><param pname="x" pval="y"/></target></local>
    <remote><identity display="Bob">sip:bob@example.org</identity><target uri="sip:bobster@phone21.example.org"/></remote>
  </dialog>
</dialog-info>`,
	"generator body":           `<?xml version="1.0" encoding="UTF-8"?>` + "\n" + `<dialog-info xmlns="urn:ietf:params:xml:ns:dialog-info" version="0" state="full" entity="sip:1001@hub.test"><dialog id="d1" call-id="c1" direction="recipient"><state>confirmed</state><local><identity>sip:1001@hub.test</identity><target uri="sip:1001@10.0.0.1;seq=1;t=2"/></local><remote><identity>sip:2001@hub.test</identity></remote></dialog></dialog-info>`,
	"empty":                    head + `</dialog-info>`,
	"later state overrides":    head + `<dialog id="x"><state event="rejected" code="486">terminated</state><state>early</state></dialog></dialog-info>`,
	"two targets, params kept": head + `<dialog id="x"><state>confirmed</state><local><target uri="a"><param pname="p" pvalue="1"/><param pname="" pvalue="2"/></target><target uri="b"><param pname="q"/></target></local></dialog></dialog-info>`,
	"second local overrides":   head + `<dialog id="x"><state>confirmed</state><local><identity display="A">sip:a@b</identity></local><local><target uri="t"/></local></dialog></dialog-info>`,
	"extensions skipped":       head + `<x:ext xmlns:x="urn:x"><dialog id="no"><state>early</state></dialog></x:ext><dialog id="y"><x:s xmlns:x="urn:x">z</x:s><duration>5</duration><state> early </state></dialog></dialog-info>`,
	"prefixed namespace":       `<d:dialog-info xmlns:d="urn:ietf:params:xml:ns:dialog-info" version=" 3 " state="partial" entity=" sip:a@b "><d:dialog id="z"><d:state>trying</d:state></d:dialog></d:dialog-info>`,
	"other-namespace dialog":   head + `<dialog xmlns="urn:other" id="x"/><dialog id="ok"><state>early</state></dialog></dialog-info>`,
	"entities":                 head + `<dialog id="&lt;1&gt;"><state>early</state><remote><identity display="Bob &amp; Co">sip:b&amp;c@d</identity></remote></dialog></dialog-info>`,
	"many dialogs":             head + manyDialogs(20) + `</dialog-info>`,
}

func manyDialogs(n int) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, `<dialog id="d%d"><state>early</state></dialog>`, i)
	}
	return b.String()
}

func TestParseScan_ReadsTheBodiesClientsSend_SameAsTree(t *testing.T) {
	cases := map[string][]byte{}
	for name, b := range capturedDialogBodies(t) {
		cases[name] = b
	}
	for name, s := range scannedBodies {
		cases[name] = []byte(s)
	}
	for name, data := range cases {
		t.Run(name, func(t *testing.T) {
			got, ok := parseScan(data, Limits{})
			if !ok {
				t.Fatalf("the scanner declined %s", data)
			}
			want, err := parseTree(data, Limits{}, xmltree.ParseDecoder)
			if err != nil {
				t.Fatalf("parseTree: %v", err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("documents differ:\n got %+v\nwant %+v", got, want)
			}
		})
	}
}

func TestParseScan_DeclinesWhatTheTreeDecides(t *testing.T) {
	for name, body := range map[string]string{
		"duplicate id after many": head + manyDialogs(12) + `<dialog id="d3"><state>early</state></dialog></dialog-info>`,
		"state with a child":      head + `<dialog id="x"><state>ear<b/>ly</state></dialog></dialog-info>`,
		"identity with a child":   head + `<dialog id="x"><state>early</state><local><identity>sip:<b/>a@b</identity></local></dialog></dialog-info>`,
		"comment":                 head + `<!-- c --></dialog-info>`,
		"bad code":                head + `<dialog id="x"><state code="99">terminated</state></dialog></dialog-info>`,
		"wrong root":              `<dialog-info xmlns="urn:other" version="1" state="full" entity="sip:a@b"/>`,
		"trailing element":        head + `</dialog-info><x/>`,
	} {
		t.Run(name, func(t *testing.T) {
			if _, ok := parseScan([]byte(body), Limits{}); ok {
				t.Fatalf("the scanner read %s itself", body)
			}
			got, gotErr := Parse([]byte(body), Limits{})
			want, wantErr := parseTree([]byte(body), Limits{}, xmltree.ParseDecoder)
			if fmt.Sprint(gotErr) != fmt.Sprint(wantErr) || !reflect.DeepEqual(got, want) {
				t.Fatalf("Parse = %+v, %v; tree = %+v, %v", got, gotErr, want, wantErr)
			}
		})
	}
}

// FuzzParse_ScannerMatchesTree: whatever the scanner reads itself, the tree
// parser (on encoding/xml) accepts with the same Document.
func FuzzParse_ScannerMatchesTree(f *testing.F) {
	for _, b := range capturedDialogBodies(f) {
		f.Add(b)
	}
	for _, s := range scannedBodies {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		lim := Limits{MaxBytes: 8192, MaxDepth: 8, MaxElements: 128}
		got, ok := parseScan(data, lim)
		want, err := parseTree(data, lim, xmltree.ParseDecoder)
		if !ok {
			return
		}
		if err != nil {
			t.Fatalf("the scanner read %q, the tree parser refuses it: %v", data, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("documents differ for %q:\n got %+v\nwant %+v", data, got, want)
		}
	})
}

// The <since> stamp is written as time.Time.AppendFormat writes SinceLayout.
func TestAppendSince_AsAppendFormat(t *testing.T) {
	for _, tm := range []time.Time{
		time.Date(2026, 12, 3, 9, 41, 7, 250_000_000, time.UTC),
		time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(9999, 12, 31, 23, 59, 59, 999_999_999, time.UTC),
		time.Date(2030, 5, 6, 7, 8, 9, 5_000_000, time.FixedZone("x", 3600)),
		time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC),
		time.UnixMilli(1764751215334),
	} {
		if got, want := string(appendSince(nil, tm)), tm.UTC().Format(SinceLayout); got != want {
			t.Errorf("appendSince(%v) = %s, want %s", tm, got, want)
		}
	}
}

package pidf

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// capturedPIDFBodies are the PIDF bodies of the captured PUBLISHes under
// the repository's testdata (browsers, Node clients, a PBX).
func capturedPIDFBodies(tb testing.TB) map[string][]byte {
	tb.Helper()
	out := map[string][]byte{}
	for _, pattern := range []string{"../../testdata/wire/*/*PUBLISH_presence*.sip", "../../testdata/pbx/*pidf*.sip"} {
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
		tb.Fatalf("found %d captured PIDF bodies under testdata", len(out))
	}
	return out
}

const presenceHead = `<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:a@b">`

// scannedPIDF are bodies the scanner must read itself.
var scannedPIDF = map[string]string{
	"open":  `<?xml version="1.0" encoding="UTF-8"?>` + "\n" + presenceHead + `<tuple id="t1"><status><basic>open</basic></status></tuple></presence>`,
	"empty": presenceHead + `</presence>`,
	"RPID person, device, extensions": `<?xml version="1.0" encoding="UTF-8"?>
<presence xmlns="urn:ietf:params:xml:ns:pidf" xmlns:dm="urn:ietf:params:xml:ns:pidf:data-model"
 xmlns:r="urn:ietf:params:xml:ns:pidf:rpid" xmlns:x="urn:example:ext" entity="pres:1001@hub.test">
 <tuple id="a"><status><basic>open</basic><x:extra>1</x:extra></status><x:cap x:weird="dropped" plain="kept"/>
  <contact priority="1">sip:1001@a.invalid</contact><note xml:lang="de">Hallo &lt;Welt&gt;</note><timestamp>2030-01-01T00:00:00Z</timestamp></tuple>
 <note>top</note>
 <dm:person id="p"><r:activities><r:on-the-phone/></r:activities></dm:person>
 <dm:device id="d"><dm:deviceID>urn:uuid:1</dm:deviceID></dm:device>
</presence>`,
	"basic quirks":       presenceHead + `<tuple id="x"><status><basic> Open </basic><basic>unknown</basic></status></tuple><tuple id="y"><status/></tuple></presence>`,
	"later fields win":   presenceHead + `<tuple id="x"><status/><contact>a</contact><contact priority="0.5">b</contact><timestamp>1</timestamp><timestamp> 2 </timestamp></tuple></presence>`,
	"prefixed namespace": `<p:presence xmlns:p="urn:ietf:params:xml:ns:pidf" entity=" sip:a@b "><p:tuple id=" t "><p:status><p:basic>closed</p:basic></p:status></p:tuple></p:presence>`,
	"two tuples, notes":  presenceHead + `<tuple id="a"><status><basic>open</basic></status><note>x</note><note xml:lang="en">y</note></tuple><tuple id="b"><status><basic>closed</basic></status></tuple><note>z</note></presence>`,
}

// declinedPIDF are bodies the scanner hands to the tree parser (invalid,
// or outside its subset); parseTree gives the answer.
var declinedPIDF = map[string]string{
	"duplicate tuple":    presenceHead + `<tuple id="a"><status/></tuple><tuple id="a"><status/></tuple></presence>`,
	"tuple without id":   presenceHead + `<tuple><status/></tuple></presence>`,
	"without status":     presenceHead + `<tuple id="a"/></presence>`,
	"two statuses":       presenceHead + `<tuple id="a"><status/><status/></tuple></presence>`,
	"unknown element":    presenceHead + `<bogus/></presence>`,
	"unknown in tuple":   presenceHead + `<tuple id="a"><status/><bogus/></tuple></presence>`,
	"person without id":  `<presence xmlns="urn:ietf:params:xml:ns:pidf" xmlns:dm="urn:ietf:params:xml:ns:pidf:data-model" entity="sip:a@b"><dm:person/></presence>`,
	"no entity":          `<presence xmlns="urn:ietf:params:xml:ns:pidf"/>`,
	"other root":         `<presence xmlns="urn:other" entity="sip:a@b"/>`,
	"basic with a child": presenceHead + `<tuple id="a"><status><basic>open<b/></basic></status></tuple></presence>`,
	"comment":            presenceHead + `<!-- c --></presence>`,
	"many tuples":        presenceHead + manyTuples(maxScanTuples+1) + `</presence>`,
}

func manyTuples(n int) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, `<tuple id="t%d"><status><basic>open</basic></status></tuple>`, i)
	}
	return b.String()
}

func TestScanner_ReadsTheBodiesClientsSend_AsTheTree(t *testing.T) {
	cases := map[string][]byte{}
	for name, b := range capturedPIDFBodies(t) {
		cases[name] = b
	}
	for name, s := range scannedPIDF {
		cases[name] = []byte(s)
	}
	for name, data := range cases {
		t.Run(name, func(t *testing.T) {
			got, ok := parseScan(data, Limits{})
			if !ok {
				t.Fatalf("the scanner declined %q", data)
			}
			want, err := parseTree(data, Limits{})
			if err != nil {
				t.Fatalf("parseTree: %v", err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("scanner document differs:\n got %+v\nwant %+v", got, want)
			}
		})
	}
}

func TestScanner_DeclinesTheRest_ParseAnswersAsTheTree(t *testing.T) {
	for name, s := range declinedPIDF {
		t.Run(name, func(t *testing.T) {
			if _, ok := parseScan([]byte(s), Limits{}); ok {
				t.Fatalf("the scanner read %q itself", s)
			}
			got, gotErr := Parse([]byte(s), Limits{})
			want, wantErr := parseTree([]byte(s), Limits{})
			if fmt.Sprint(gotErr) != fmt.Sprint(wantErr) || !reflect.DeepEqual(got, want) {
				t.Fatalf("Parse = %+v, %v; tree = %+v, %v", got, gotErr, want, wantErr)
			}
		})
	}
}

// FuzzParse_ScannerMatchesTree: whatever the scanner reads itself, the
// tree parser accepts with the same Document.
func FuzzParse_ScannerMatchesTree(f *testing.F) {
	for _, b := range capturedPIDFBodies(f) {
		f.Add(b)
	}
	for _, s := range scannedPIDF {
		f.Add([]byte(s))
	}
	for _, s := range declinedPIDF {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		lim := Limits{MaxBytes: 4096, MaxDepth: 8, MaxElements: 64}
		got, ok := parseScan(data, lim)
		want, err := parseTree(data, lim)
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

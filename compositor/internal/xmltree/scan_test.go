package xmltree

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"
)

// wireBodies returns the bodies of the captured PUBLISHes under the
// repository's testdata (real clients and a PBX).
func wireBodies(tb testing.TB) map[string][]byte {
	tb.Helper()
	out := map[string][]byte{}
	for _, pattern := range []string{"../../../testdata/wire/*/*PUBLISH*.sip", "../../../testdata/pbx/*.sip"} {
		files, err := filepath.Glob(pattern)
		if err != nil {
			tb.Fatal(err)
		}
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
	if len(out) < 4 {
		tb.Fatalf("found %d captured bodies under testdata", len(out))
	}
	return out
}

// inSubset are documents clients send; the scanner must read them itself.
var inSubset = map[string]string{
	"declaration with encoding": `<?xml version="1.0" encoding="UTF-8"?>` + "\n" + `<a xmlns="urn:x"><b/></a>`,
	"single quotes, standalone": `<?xml version='1.0' encoding='utf-8' standalone='yes' ?><a xmlns='urn:x' k='v'/>`,
	"no declaration":            `<a/>`,
	"entities in text and attr": `<a t="&quot;x&quot; &amp; &lt;y&gt; &apos;">1 &amp; 2 &lt; 3</a>`,
	"prefixes and xml:lang":     `<p:a xmlns:p="urn:p" xmlns:q="urn:q"><q:b q:k="1" xml:lang="en">t</q:b><c>u</c></p:a>`,
	"redeclared default":        `<a xmlns="urn:1"><b xmlns="urn:2"><c/></b><d xmlns=""/></a>`,
	"only declarations":         `<a xmlns="urn:1" xmlns:p="urn:p"><p:b/></a>`,
	"text around children":      `<a> x <b/> y </a>`,
	"white space around":        "\n\t <a>\n</a>\n ",
	"non-ASCII text":            `<a n="Zoë">Grüße 日本 🙂</a>`,
	"no space between attrs":    `<a x="1"y='2'/>`,
	"space before end":          `<a></a  >`,
	"tabs and newlines in attr": "<a v=\"1\t2\n3\"/>",
	"]] without >":              `<a>]]</a>`,
	"> in text and attr":        `<a v=">">></a>`,
}

// outOfSubset are documents the scanner hands to encoding/xml (some are
// valid, some are not; Parse must give the decoder's answer either way).
var outOfSubset = map[string]string{
	"comment":               `<a><!-- c --></a>`,
	"CDATA":                 `<a><![CDATA[x]]></a>`,
	"character reference":   `<a>&#65;</a>`,
	"DOCTYPE":               `<!DOCTYPE a [<!ENTITY e "x">]><a>&e;</a>`,
	"CR":                    "<a>x\r\ny</a>",
	"other PI":              `<?xml-stylesheet href="s"?><a/>`,
	"PI after root start":   `<a><?xml version="1.0"?></a>`,
	"version 1.1":           `<?xml version="1.1"?><a/>`,
	"latin-1":               `<?xml version="1.0" encoding="ISO-8859-1"?><a/>`,
	"undeclared prefix":     `<p:a/>`,
	"undeclared attr pfx":   `<a p:k="v"/>`,
	"mismatched end":        `<a></b>`,
	"mismatched prefix end": `<p:a xmlns:p="u"></q:a>`,
	"second root":           `<a/><b/>`,
	"text outside":          `x<a/>`,
	"text after":            `<a/>x`,
	"BOM":                   "\ufeff<a/>",
	"unclosed":              `<a><b></b>`,
	"empty":                 ``,
	"unquoted attr":         `<a k=v/>`,
	"attr without value":    `<a k/>`,
	"< in attr":             `<a k="<"/>`,
	"]]> in text":           `<a>]]></a>`,
	"unknown entity":        `<a>&nbsp;</a>`,
	"bare &":                `<a>a & b</a>`,
	"control char":          "<a>\x01</a>",
	"invalid UTF-8":         "<a>\xff</a>",
	"non-ASCII name":        `<é/>`,
	"two colons":            `<a:b:c/>`,
	"digit name":            `<1/>`,
}

func TestScanner_ReadsTheBodiesClientsSend(t *testing.T) {
	cases := map[string][]byte{}
	for name, b := range wireBodies(t) {
		cases[name] = b
	}
	for name, s := range inSubset {
		cases[name] = []byte(s)
	}
	for name, data := range cases {
		t.Run(name, func(t *testing.T) {
			got, ok := parseScan(data, Limits{})
			if !ok {
				t.Fatalf("the scanner declined %q", data)
			}
			want, err := ParseDecoder(data, Limits{})
			if err != nil {
				t.Fatalf("ParseDecoder: %v", err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("scanner tree differs:\n got %+v\nwant %+v", got, want)
			}
		})
	}
}

func TestScanner_DeclinesOutsideItsSubset_ParseAnswersAsTheDecoder(t *testing.T) {
	for name, s := range outOfSubset {
		t.Run(name, func(t *testing.T) {
			if _, ok := parseScan([]byte(s), Limits{}); ok {
				t.Fatalf("the scanner read %q itself", s)
			}
			got, gotErr := Parse([]byte(s), Limits{})
			want, wantErr := ParseDecoder([]byte(s), Limits{})
			if fmt.Sprint(gotErr) != fmt.Sprint(wantErr) || !reflect.DeepEqual(got, want) {
				t.Fatalf("Parse = %+v, %v; decoder = %+v, %v", got, gotErr, want, wantErr)
			}
		})
	}
}

func TestScanner_Limits_HandedToTheDecoder(t *testing.T) {
	deep := strings.Repeat("<a>", 5) + strings.Repeat("</a>", 5)
	many := "<a>" + strings.Repeat("<b/>", 5) + "</a>"
	for _, tc := range []struct {
		name string
		doc  string
		lim  Limits
	}{
		{"bytes", deep, Limits{MaxBytes: len(deep) - 1}},
		{"depth", deep, Limits{MaxDepth: 4}},
		{"elements", many, Limits{MaxElements: 5}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, ok := parseScan([]byte(tc.doc), tc.lim); ok {
				t.Fatal("the scanner read a document over the limit")
			}
			if _, err := Parse([]byte(tc.doc), tc.lim); err == nil {
				t.Fatal("Parse accepted a document over the limit")
			}
		})
	}
}

// nsBomb is a document of n sibling elements under a root that declares n
// prefixes, each sibling declaring one more (the attack that made the
// scope map copied per element cost ~1 s per PUBLISH).
func nsBomb(n int) []byte {
	var b strings.Builder
	b.WriteString(`<r xmlns="urn:r"`)
	for i := range n {
		fmt.Fprintf(&b, ` xmlns:p%d="urn:%d"`, i, i)
	}
	b.WriteString(">")
	for i := range n {
		fmt.Fprintf(&b, `<p0:e xmlns:q%d="urn:q"/>`, i)
	}
	b.WriteString("</r>")
	return []byte(b.String())
}

func TestParse_ManyNamespaceDeclarations_CostLinear(t *testing.T) {
	lim := Limits{MaxBytes: 1 << 20, MaxElements: 1 << 16}
	bytesFor := func(n int) int64 {
		doc := nsBomb(n)
		if _, err := Parse(doc, lim); err != nil {
			t.Fatalf("Parse: %v", err)
		}
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		_, _ = Parse(doc, lim)
		runtime.ReadMemStats(&after)
		return int64(after.TotalAlloc - before.TotalAlloc)
	}
	small, large := bytesFor(500), bytesFor(2000)
	// Linear: 4× the declarations cost ~4× the bytes; copying the scope
	// per element cost 16×.
	if large > 6*small {
		t.Fatalf("memory for 2000 declarations = %d B, for 500 = %d B: grows faster than linearly", large, small)
	}
}

func BenchmarkParse_ManyNamespaceDeclarations(b *testing.B) {
	doc := nsBomb(2000)
	lim := Limits{MaxBytes: 1 << 20, MaxElements: 1 << 16}
	b.SetBytes(int64(len(doc)))
	b.ReportAllocs()
	for range b.N {
		if _, err := Parse(doc, lim); err != nil {
			b.Fatal(err)
		}
	}
}

// FuzzParse_ScannerMatchesDecoder: whatever the scanner reads itself, the
// encoding/xml reader accepts with the same tree.
func FuzzParse_ScannerMatchesDecoder(f *testing.F) {
	for _, b := range wireBodies(f) {
		f.Add(b)
	}
	for _, s := range inSubset {
		f.Add([]byte(s))
	}
	for _, s := range outOfSubset {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		lim := Limits{MaxBytes: 4096, MaxDepth: 8, MaxElements: 64}
		got, ok := parseScan(data, lim)
		want, err := ParseDecoder(data, lim)
		if !ok {
			return
		}
		if err != nil {
			t.Fatalf("the scanner read %q, the decoder refuses it: %v", data, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("trees differ for %q:\n got %+v\nwant %+v", data, got, want)
		}
	})
}

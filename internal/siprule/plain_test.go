package siprule_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/emiago/sipgo/sip"
	"github.com/presencehub/presencehub/internal/siprule"
)

// plainFixtures are the requests real clients and PBXs sent (testdata/wire,
// testdata/pbx/kamailio).
func plainFixtures(tb testing.TB) map[string][]byte {
	tb.Helper()
	files, _ := filepath.Glob(filepath.Join("..", "..", "testdata", "wire", "*", "*-c2s-*.sip"))
	pbx, _ := filepath.Glob(filepath.Join("..", "..", "testdata", "pbx", "kamailio", "*.sip"))
	out := map[string][]byte{}
	for _, name := range append(files, pbx...) {
		data, err := os.ReadFile(name)
		if err != nil {
			tb.Fatal(err)
		}
		out[name] = data
	}
	if len(out) == 0 {
		tb.Fatal("no fixtures")
	}
	return out
}

func TestScanPlain_EveryCapturedPublishIsPlainAndReadAsSipgoReadsIt(t *testing.T) {
	publishes := 0
	for name, data := range plainFixtures(t) {
		r, ok := siprule.ScanPlain(data)
		if bytes.HasPrefix(data, []byte("PUBLISH ")) {
			publishes++
			if !ok {
				t.Errorf("%s: a PUBLISH as clients send it is not plain", name)
				continue
			}
		}
		if ok {
			samePlain(t, name, data, r)
		}
	}
	if publishes < 20 {
		t.Fatalf("only %d PUBLISH captures", publishes)
	}
}

func TestScanPlain_UnusualFormsAreLeftToSipgo(t *testing.T) {
	const (
		start = "PUBLISH sip:1001@hub.test SIP/2.0\r\n"
		via   = "Via: SIP/2.0/WS x.invalid;branch=z9hG4bK1\r\n"
		from  = "From: \"Ext 1001\" <sip:1001@hub.test>;tag=a\r\n"
		to    = "To: <sip:1001@hub.test>\r\n"
		rest  = "Call-ID: c1\r\nCSeq: 1 PUBLISH\r\nEvent: dialog\r\nContent-Length: 3\r\n\r\nabc"
	)
	plain := start + via + from + to + rest
	if r, ok := siprule.ScanPlain([]byte(plain)); !ok {
		t.Fatal("the plain form is not read")
	} else {
		samePlain(t, "plain", []byte(plain), r)
	}
	tests := []struct{ name, msg string }{
		{"a response", "SIP/2.0 200 OK\r\n" + via + from + to + rest},
		{"lower-case method", strings.Replace(plain, "PUBLISH sip", "publish sip", 1)},
		{"Request-URI with parameters", strings.Replace(plain, "hub.test SIP/2.0", "hub.test;transport=ws SIP/2.0", 1)},
		{"Request-URI without user", strings.Replace(plain, "sip:1001@hub.test SIP", "sip:hub.test SIP", 1)},
		{"Request-URI with escapes", strings.Replace(plain, "sip:1001@", "sip:10%2001@", 1)},
		{"IPv6 host", strings.Replace(plain, "sip:1001@hub.test SIP", "sip:1001@[::1] SIP", 1)},
		{"tel URI", strings.Replace(plain, "sip:1001@hub.test SIP", "tel:1001 SIP", 1)},
		{"SIP/3.0", strings.Replace(plain, " SIP/2.0\r\n", " SIP/3.0\r\n", 1)},
		{"folded header", strings.Replace(plain, "Event: dialog\r\n", "Event: dialog\r\n ;id=1\r\n", 1)},
		{"compact header", strings.Replace(plain, "Event: dialog", "o: dialog", 1)},
		{"space before colon", strings.Replace(plain, "Event: dialog", "Event : dialog", 1)},
		{"Contact", strings.Replace(plain, rest, "Contact: <sip:a@b>\r\n"+rest, 1)},
		{"Route", strings.Replace(plain, rest, "Route: <sip:a@b;lr>\r\n"+rest, 1)},
		{"Record-Route", strings.Replace(plain, rest, "Record-Route: <sip:a@b;lr>\r\n"+rest, 1)},
		{"Via with rport", strings.Replace(plain, "branch=z9hG4bK1", "branch=z9hG4bK1;rport", 1)},
		{"Via with received", strings.Replace(plain, "branch=z9hG4bK1", "branch=z9hG4bK1;received=1.2.3.4", 1)},
		{"two Vias in one line", strings.Replace(plain, "branch=z9hG4bK1", "branch=z9hG4bK1, SIP/2.0/WS y;branch=z9hG4bK2", 1)},
		{"five Via lines", strings.Replace(plain, via, strings.Repeat(via, 5), 1)},
		{"Via with a quoted parameter", strings.Replace(plain, "branch=z9hG4bK1", "branch=z9hG4bK1;x=\"a\"", 1)},
		{"Via with a parameter twice", strings.Replace(plain, "branch=z9hG4bK1", "branch=z9hG4bK1;lr;lr", 1)},
		{"From with a parameter twice", strings.Replace(plain, ";tag=a", ";tag=a;TAG=b", 1)},
		{"Request-URI with a parameter twice", strings.Replace(plain, "hub.test SIP/2.0", "hub.test;a=1;A=2 SIP/2.0", 1)},
		{"Via with port 0", strings.Replace(plain, "x.invalid;", "x.invalid:0;", 1)},
		{"Via with a port with a leading zero", strings.Replace(plain, "x.invalid;", "x.invalid:05060;", 1)},
		{"Via with spaces", strings.Replace(plain, "branch=z9hG4bK1", "branch = z9hG4bK1", 1)},
		{"no Via", strings.Replace(plain, via, "", 1)},
		{"no From", strings.Replace(plain, from, "", 1)},
		{"no To", strings.Replace(plain, to, "", 1)},
		{"no Call-ID", strings.Replace(plain, "Call-ID: c1\r\n", "", 1)},
		{"no CSeq", strings.Replace(plain, "CSeq: 1 PUBLISH\r\n", "", 1)},
		{"two From", strings.Replace(plain, from, from+from, 1)},
		{"two To", strings.Replace(plain, to, to+to, 1)},
		{"two Call-ID", strings.Replace(plain, "Call-ID: c1\r\n", "Call-ID: c1\r\nCall-ID: c2\r\n", 1)},
		{"two CSeq", strings.Replace(plain, "CSeq: 1 PUBLISH\r\n", "CSeq: 1 PUBLISH\r\nCSeq: 2 PUBLISH\r\n", 1)},
		{"two Content-Length", strings.Replace(plain, "Content-Length: 3\r\n", "Content-Length: 3\r\nContent-Length: 3\r\n", 1)},
		{"two SIP-If-Match", strings.Replace(plain, rest, "SIP-If-Match: a\r\nSIP-If-Match: b\r\n"+rest, 1)},
		{"invalid Call-ID", strings.Replace(plain, "Call-ID: c1", "Call-ID: c1,c2", 1)},
		{"CSeq too big", strings.Replace(plain, "CSeq: 1 ", "CSeq: 2147483648 ", 1)},
		{"CSeq with a leading zero", strings.Replace(plain, "CSeq: 1 ", "CSeq: 01 ", 1)},
		{"CSeq with two spaces", strings.Replace(plain, "CSeq: 1 ", "CSeq: 1  ", 1)},
		{"Content-Length not a number", strings.Replace(plain, "Content-Length: 3", "Content-Length: 3x", 1)},
		{"body shorter than Content-Length", strings.Replace(plain, "Content-Length: 3", "Content-Length: 4", 1)},
		{"Max-Forwards not a number", strings.Replace(plain, rest, "Max-Forwards: -1\r\n"+rest, 1)},
		{"From without brackets", strings.Replace(plain, from, "From: sip:1001@hub.test;tag=a\r\n", 1)},
		{"From display name with an escape", strings.Replace(plain, "\"Ext 1001\"", "\"Ext \\\" 1001\"", 1)},
		{"From display name in UTF-8", strings.Replace(plain, "Ext 1001", "Müller", 1)},
		{"From with a space before its parameters", strings.Replace(plain, ">;tag=a", "> ;tag=a", 1)},
		{"To with TAG in upper case", strings.Replace(plain, to, "To: <sip:1001@hub.test>;TAG=b\r\n", 1)},
		{"NUL in a copied header", strings.Replace(plain, "Call-ID: c1", "Call-ID: c\x001", 1)},
		{"control character in a display name", strings.Replace(plain, "Ext 1001", "Ext\x7f1001", 1)},
		{"bare CR", strings.Replace(plain, "Event: dialog\r\n", "Event: dialog\rX: y\r\n", 1)},
		{"no end of header", start + via + from + to + "Call-ID: c1\r\nCSeq: 1 PUBLISH\r\n"},
		{"longer than sipgo parses", strings.Replace(plain, rest, "X: "+strings.Repeat("a", 65536)+"\r\n"+rest, 1)},
	}
	for _, tt := range tests {
		if _, ok := siprule.ScanPlain([]byte(tt.msg)); ok {
			t.Errorf("%s: read as plain", tt.name)
		}
	}
}

func TestScanPlain_BytesOfValuesNotCopiedReadAsSipgoReadsThem(t *testing.T) {
	const plain = "PUBLISH sip:1001@hub.test SIP/2.0\r\nVia: SIP/2.0/WS x.invalid;branch=z9hG4bK1\r\n" +
		"From: <sip:1001@hub.test>;tag=a\r\nTo: <sip:1001@hub.test>\r\nCall-ID: c1\r\nCSeq: 1 PUBLISH\r\n" +
		"Event: dialog\r\nContent-Length: 3\r\n\r\nabc"
	tests := []struct{ name, msg string }{
		{"NUL in Event", strings.Replace(plain, "Event: dialog", "Event: dia\x00log", 1)},
		{"bare LF: the next line is part of the value", strings.Replace(plain, "Event: dialog\r\n", "Event: dialog\n", 1)},
		{"UTF-8 in User-Agent", strings.Replace(plain, "Event: dialog", "Event: dialog\r\nUser-Agent: Grüße", 1)},
		{"vertical tab around Expires", strings.Replace(plain, "Event: dialog", "Event: dialog\r\nExpires:\v60\v", 1)},
	}
	for _, tt := range tests {
		r, ok := siprule.ScanPlain([]byte(tt.msg))
		if !ok {
			t.Errorf("%s: not read as plain", tt.name)
			continue
		}
		samePlain(t, tt.name, []byte(tt.msg), r)
	}
}

func TestScanPlain_AllocatesNothing(t *testing.T) {
	var data []byte
	for name, d := range plainFixtures(t) {
		if strings.Contains(name, "PUBLISH") {
			data = d
			break
		}
	}
	if got := testing.AllocsPerRun(100, func() { siprule.ScanPlain(data) }); got != 0 {
		t.Fatalf("ScanPlain allocates %.0f times", got)
	}
}

// FuzzScanPlain: whatever ScanPlain reads, sipgo's parse accepts and reads
// to the same values.
func FuzzScanPlain(f *testing.F) {
	for _, data := range plainFixtures(f) {
		f.Add(data)
	}
	f.Add([]byte("PUBLISH sip:1001@hub.test SIP/2.0\r\nVia: SIP/2.0/WS x.invalid:80;branch=z9hG4bK1;lr\r\nVia: SIP/2.0/TCP 10.0.0.1;branch=z9hG4bK2\r\n" +
		"From: Ext One <sips:1001@hub.test:5061;transport=tls>;tag=a;x\r\nTo: \"\"<sip:1001@hub.test>;tag=b\r\nCall-ID: a@b\r\n" +
		"CSeq: 1 PUBLISH\r\nMax-Forwards: 70\r\nSIP-If-Match: a, b\r\nExpires: x\r\nContent-Type: text/plain;charset=utf-8\r\n\r\nbody"))
	f.Fuzz(func(t *testing.T, data []byte) {
		if r, ok := siprule.ScanPlain(data); ok {
			samePlain(t, "fuzz", data, r)
		}
	})
}

// samePlain fails unless sipgo parses data into a request with the values
// ScanPlain read as r.
func samePlain(t *testing.T, name string, data []byte, r siprule.PlainRequest) {
	t.Helper()
	msg, err := sip.NewParser().ParseSIP(data)
	if err != nil {
		t.Fatalf("%s: plain, but sipgo refuses it: %v\n%q", name, err, data)
	}
	req, ok := msg.(*sip.Request)
	if !ok {
		t.Fatalf("%s: plain, but not a request for sipgo", name)
	}
	check := func(what, got, want string) {
		t.Helper()
		if got != want {
			t.Errorf("%s: %s: scanned %q, sipgo %q\n%q", name, what, got, want, data)
		}
	}
	check("method", string(r.Method), string(req.Method))
	check("version", "SIP/2.0", req.SipVersion)
	check("Request-URI user", string(r.User), req.Recipient.User)
	check("Request-URI host", string(r.Host), req.Recipient.Host)
	if len(req.Headers()) != r.Headers {
		t.Errorf("%s: %d header fields scanned, sipgo %d", name, r.Headers, len(req.Headers()))
	}
	var vias []string
	for _, h := range req.Headers() {
		if v, ok := h.(*sip.ViaHeader); ok {
			if v.ProtocolName != "SIP" || v.ProtocolVersion != "2.0" || !siprule.IsToken(v.Transport) || !siprule.ValidHost(v.Host) {
				t.Errorf("%s: Via %q is not what the hub answers", name, v.Value())
			}
			vias = append(vias, v.Value())
		}
	}
	var scanned []string
	for _, v := range r.Vias() {
		scanned = append(scanned, string(v))
	}
	check("Vias", strings.Join(scanned, " | "), strings.Join(vias, " | "))
	// From and To are copied as written: read again by sipgo, they are
	// what sipgo read in the request.
	var from sip.FromHeader
	var err1 error
	from.DisplayName, err1 = sip.ParseAddressValue(string(r.From), &from.Address, &from.Params)
	check("From", from.Value(), req.From().Value())
	var to sip.ToHeader
	var err2 error
	to.DisplayName, err2 = sip.ParseAddressValue(string(r.To), &to.Address, &to.Params)
	check("To", to.Value(), req.To().Value())
	if err1 != nil || err2 != nil {
		t.Errorf("%s: From or To not parsed alone: %v %v", name, err1, err2)
	}
	if r.ToTagged != req.To().Params.Has("tag") {
		t.Errorf("%s: To tagged %v, sipgo %v", name, r.ToTagged, req.To().Params.Has("tag"))
	}
	check("Call-ID", string(r.CallID), req.CallID().Value())
	check("CSeq", string(r.CSeq), req.CSeq().Value())
	check("CSeq method", string(r.CSeqMethod), string(req.CSeq().MethodName))
	header := func(name string) string {
		if h := siprule.Header(req, name); h != nil {
			return "[" + h.Value() + "]"
		}
		return "none"
	}
	value := func(b []byte) string {
		if b == nil {
			return "none"
		}
		return "[" + string(b) + "]"
	}
	check("Expires", value(r.Expires), header("Expires"))
	check("Event", value(r.Event), header("Event"))
	check("SIP-If-Match", value(r.IfMatch), header("SIP-If-Match"))
	check("Authorization", value(r.Authorization), header("Authorization"))
	ct := "none"
	if h := req.ContentType(); h != nil {
		ct = "[" + h.Value() + "]"
	}
	check("Content-Type", value(r.ContentType), ct)
	if !bytes.Equal(r.Body, req.Body()) {
		t.Errorf("%s: body %q, sipgo %q", name, r.Body, req.Body())
	}
	longest := 0
	for h := siprule.ScanHeaders(data); h.Next(); {
		longest = max(longest, h.ValueLen())
	}
	if r.LongestValue != longest {
		t.Errorf("%s: longest value %d bytes, HeaderLines %d", name, r.LongestValue, longest)
	}
	if siprule.HeaderCount(req, "SIP-If-Match") > 1 {
		t.Errorf("%s: several SIP-If-Match read as plain", name)
	}
}

// BenchmarkScanPlain: a JsSIP PUBLISH (testdata/wire) read without a parse.
func BenchmarkScanPlain(b *testing.B) {
	data, err := os.ReadFile(filepath.Join("..", "..", "testdata", "wire", "jssip-node", "07-c2s-PUBLISH_presence.sip"))
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := siprule.ScanPlain(data); !ok {
			b.Fatal("not plain")
		}
	}
}

// BenchmarkScanPlain_SipgoParse: the same PUBLISH parsed by sipgo, for
// comparison.
func BenchmarkScanPlain_SipgoParse(b *testing.B) {
	data, err := os.ReadFile(filepath.Join("..", "..", "testdata", "wire", "jssip-node", "07-c2s-PUBLISH_presence.sip"))
	if err != nil {
		b.Fatal(err)
	}
	p := sip.NewParser()
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := p.ParseSIP(data); err != nil {
			b.Fatal(err)
		}
	}
}

package server

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/emiago/sipgo/sip"
	"github.com/presencehub/presencehub/compositor/store/memstore"
	"github.com/presencehub/presencehub/internal/siprule"
	"github.com/presencehub/presencehub/server/auth"
	"github.com/presencehub/presencehub/server/flow"
)

// plainPair is two hubs alike but for the path a PUBLISH takes: plain
// reads the plain form without sipgo's parse, parsed parses everything.
type plainPair struct {
	plain, parsed *Server
	signer        auth.Signer
}

func newPlainPair(tb testing.TB) *plainPair {
	tb.Helper()
	secret := []byte("0123456789abcdef0123456789abcdef")
	v, err := auth.NewVerifier(auth.Config{Secret: secret, Domain: "hub.test"})
	if err != nil {
		tb.Fatal(err)
	}
	pp := &plainPair{signer: auth.Signer{Secret: secret, Domain: "hub.test"}}
	for i, s := range []**Server{&pp.plain, &pp.parsed} {
		if *s, err = New(Config{Domain: "hub.test", Verifier: v, Store: memstore.New(memstore.Options{})}); err != nil {
			tb.Fatal(err)
		}
		(*s).parseAll = i == 1
		srv := *s
		tb.Cleanup(func() { srv.Close() })
	}
	return pp
}

func (pp *plainPair) identity(tb testing.TB, sub string, publish ...string) *auth.Identity {
	tok := pp.token(tb, sub, publish...)
	id, err := pp.plain.cfg.Verifier.Verify(tok)
	if err != nil {
		tb.Fatal(err)
	}
	return id
}

func (pp *plainPair) token(tb testing.TB, sub string, publish ...string) string {
	tok, err := pp.signer.Mint(sub, 3600e9, func(c *auth.Claims) { c.Publish = publish })
	if err != nil {
		tb.Fatal(err)
	}
	return tok
}

// answers feeds msgs to both hubs over a flow authenticated as id (nil:
// none) and returns what each sent, in order.
func (pp *plainPair) answers(id *auth.Identity, lim func() *limiter, msgs ...[]byte) (plain, parsed []string) {
	for i, s := range []*Server{pp.plain, pp.parsed} {
		rec := &recorder{}
		fl := flow.New(rec, id)
		l := lim()
		for _, m := range msgs {
			s.handleMessage(fl, l, m)
		}
		fl.Close()
		for _, out := range rec.sent {
			if i == 0 {
				plain = append(plain, string(out))
			} else {
				parsed = append(parsed, string(out))
			}
		}
	}
	return plain, parsed
}

// Random per answer: the To tag the hub adds and the entity-tag.
var (
	hubToTag = regexp.MustCompile(`(?m)^(To: [^\r]*;tag=)[^;\r]+(\r\n)`)
	anETag   = regexp.MustCompile(`(?m)^(SIP-ETag: )[^\r]+(\r\n)`)
)

func normalizeAnswer(a string) string {
	a = hubToTag.ReplaceAllString(a, "${1}TAG${2}")
	return anETag.ReplaceAllString(a, "${1}ETAG${2}")
}

func TestPlainPublish_AnsweredAsSipgosParseAnswersIt(t *testing.T) {
	pp := newPlainPair(t)
	pbx := pp.identity(t, "pbx", "*")
	self := pp.identity(t, "1001")
	wire, err := os.ReadFile(filepath.Join("..", "testdata", "wire", "jssip-node", "07-c2s-PUBLISH_presence.sip"))
	if err != nil {
		t.Fatal(err)
	}
	kam, err := os.ReadFile(filepath.Join("..", "testdata", "pbx", "kamailio", "08-dialog-1001-confirmed.sip"))
	if err != nil {
		t.Fatal(err)
	}
	kam = []byte(strings.ReplaceAll(string(kam), "SIP-If-Match: ", "X-Was-If-Match: ")) // an initial PUBLISH
	edit := func(msg []byte, from, to string) []byte {
		if !strings.Contains(string(msg), from) {
			t.Fatalf("%q not in the message", from)
		}
		return []byte(strings.Replace(string(msg), from, to, 1))
	}
	// The capture's Bearer is a dummy: the connection's identity is used.
	withBearer, wire := wire, edit(wire, "Authorization: Bearer", "X-Authorization: Bearer")
	onHub := func(msg []byte) []byte { // publishMsg's PUBLISH to this hub's domain
		head, body, _ := strings.Cut(string(msg), "\r\n\r\n")
		body = strings.ReplaceAll(body, benchDomain, "hub.test")
		head = regexp.MustCompile(`Content-Length: \d+`).ReplaceAllString(head, "Content-Length: "+strconv.Itoa(len(body)))
		return []byte(strings.ReplaceAll(head, benchDomain, "hub.test") + "\r\n\r\n" + body)
	}
	dialog := onHub(publishMsg(0, ""))
	unlimited := func() *limiter { return newLimiter(1<<20, 1<<20, 1) }
	spent := func() *limiter { l := newLimiter(1, 1, 1); l.tokens = 0; return l }
	tests := []struct {
		name   string
		id     *auth.Identity
		lim    func() *limiter
		msgs   [][]byte
		status string // of the last answer
	}{
		{"JsSIP presence PUBLISH with a Bearer", nil, unlimited, [][]byte{wireWithToken(withBearer, pp.token(t, "1001"))}, "SIP/2.0 200 OK"},
		{"Kamailio dialog PUBLISH", pbx, unlimited, [][]byte{kam}, "SIP/2.0 200 OK"},
		{"dialog PUBLISH, then a modify with a stale entity-tag", pbx, unlimited, [][]byte{dialog, onHub(publishMsg(1, "stale"))}, "SIP/2.0 412 "},
		{"two Vias and a tagged To", pbx, unlimited, [][]byte{edit(edit(dialog, "Max-Forwards: 70\r\n", "Via: SIP/2.0/TCP 10.0.0.1:5060;branch=z9hG4bKp1\r\n"), "To: <sip:1001@hub.test>", "To: <sip:1001@hub.test>;tag=x1")}, "SIP/2.0 200 OK"},
		{"another domain", pbx, unlimited, [][]byte{edit(wire, "PUBLISH sip:1001@hub.test", "PUBLISH sip:1001@other.test")}, "SIP/2.0 403 "},
		{"not in the publish claim", self, unlimited, [][]byte{edit(wire, "PUBLISH sip:1001@", "PUBLISH sip:1002@")}, "SIP/2.0 403 "},
		{"Expires not a number", pbx, unlimited, [][]byte{edit(wire, "Expires: 300", "Expires: soon")}, "SIP/2.0 400 "},
		{"Expires too brief", pbx, unlimited, [][]byte{edit(wire, "Expires: 300", "Expires: 5")}, "SIP/2.0 423 "},
		{"unknown event package", pbx, unlimited, [][]byte{edit(wire, "Event: presence", "Event: weather")}, "SIP/2.0 489 "},
		{"unsupported body type", pbx, unlimited, [][]byte{edit(wire, "Content-Type: application/pidf+xml", "Content-Type: text/plain")}, "SIP/2.0 415 "},
		{"Content-Type with parameters, upper case", pbx, unlimited, [][]byte{edit(wire, "Content-Type: application/pidf+xml", "Content-Type: Application/PIDF+XML;charset=utf-8")}, "SIP/2.0 200 OK"},
		{"a Bearer that is not a token", nil, unlimited, [][]byte{withBearer}, "SIP/2.0 401 Unauthorized - invalid token"},
		{"no identity at all", nil, unlimited, [][]byte{wire}, "SIP/2.0 401 Unauthorized"},
		{"over the rate", pbx, spent, [][]byte{wire}, "SIP/2.0 503 "},
		{"CSeq of another method", pbx, unlimited, [][]byte{edit(wire, "CSeq: 1 PUBLISH", "CSeq: 1 NOTIFY")}, "SIP/2.0 400 "},
		{"a header field too long", pbx, unlimited, [][]byte{edit(wire, "User-Agent: JsSIP-node-test", "User-Agent: "+strings.Repeat("j", 9000))}, "SIP/2.0 400 "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, m := range tt.msgs {
				if _, ok := siprule.ScanPlain(m); !ok {
					t.Fatalf("not in the plain form:\n%s", m)
				}
			}
			plain, parsed := pp.answers(tt.id, tt.lim, tt.msgs...)
			if len(plain) != len(tt.msgs) || len(parsed) != len(tt.msgs) {
				t.Fatalf("%d and %d answers to %d requests", len(plain), len(parsed), len(tt.msgs))
			}
			for i := range plain {
				if got, want := normalizeAnswer(plain[i]), normalizeAnswer(parsed[i]); got != want {
					t.Errorf("answer %d:\nplain  %q\nparsed %q", i, got, want)
				}
			}
			if last := plain[len(plain)-1]; !strings.HasPrefix(last, tt.status) {
				t.Errorf("answer %q, want %q", last, tt.status)
			}
		})
	}
}

// wireWithToken puts tok in place of a capture's dummy Bearer.
func wireWithToken(msg []byte, tok string) []byte {
	return regexp.MustCompile(`Bearer [^\r]+`).ReplaceAll(msg, []byte("Bearer "+tok))
}

func TestPlainPublish_ClientAndPBXCapturesTakeThePlainPath(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join("..", "testdata", "wire", "*", "*-c2s-PUBLISH*.sip"))
	pbx, _ := filepath.Glob(filepath.Join("..", "testdata", "pbx", "kamailio", "*.sip"))
	if len(files) < 8 || len(pbx) < 20 {
		t.Fatalf("%d client and %d PBX captures", len(files), len(pbx))
	}
	bs := newBenchServer(t, nil)
	for _, name := range append(files, pbx...) {
		data, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		r, ok := siprule.ScanPlain(data)
		if !ok || string(r.Method) != "PUBLISH" || r.Headers > bs.s.cfg.MaxHeaders || r.LongestValue > bs.s.cfg.MaxHeaderLength {
			t.Errorf("%s: not on the plain path", name)
		}
	}
}

// FuzzPlainPublish: whatever the message, the plain path answers what
// sipgo's parse and handleMessage's checks answer, as sipgo reads the
// answers (the To tag the hub adds and entity-tags aside).
func FuzzPlainPublish(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("..", "testdata", "wire", "*", "*-c2s-PUBLISH*.sip"))
	pbx, _ := filepath.Glob(filepath.Join("..", "testdata", "pbx", "kamailio", "*.sip"))
	for _, name := range append(files, pbx...) {
		if data, err := os.ReadFile(name); err == nil {
			f.Add(data)
		}
	}
	f.Add(publishMsg(0, ""))
	f.Add(publishMsg(1, "stale"))
	pp := newPlainPair(f)
	id := pp.identity(f, "1001", "*")
	lim := func() *limiter { return newLimiter(1<<20, 1<<20, 1) }
	f.Fuzz(func(t *testing.T, data []byte) {
		plain, parsed := pp.answers(id, lim, data)
		if len(plain) != len(parsed) {
			t.Fatalf("%d answers on the plain path, %d parsed:\n%q\n%q", len(plain), len(parsed), plain, parsed)
		}
		for i := range plain {
			if got, want := reread(t, plain[i]), reread(t, parsed[i]); got != want {
				t.Fatalf("answer to %q:\nplain  %q\nparsed %q", data, got, want)
			}
		}
	})
}

// reread is an answer as sipgo reads it, written again by sipgo, and
// normalized: the plain path copies From and To as received, sipgo writes
// them in its own form (an empty display name left out, say).
func reread(t *testing.T, answer string) string {
	msg, err := sip.NewParser().ParseSIP([]byte(answer))
	if err != nil {
		t.Fatalf("unparsable answer %q: %v", answer, err)
	}
	return normalizeAnswer(msg.String())
}

// The store keeps a PUBLISH's body as it is given: on the plain path it is
// a copy, not a slice of the message, which would keep its header too.
func TestPlainPublish_StoreKeepsTheBodyNotTheMessage(t *testing.T) {
	st := memstore.New(memstore.Options{})
	bs := newBenchServer(t, st)
	fl, c := bs.flow(t, bs.token(t, "pbx", "*"))
	msg := publishMsg(0, "")
	bs.s.handleMessage(fl, newLimiter(1<<20, 1<<20, 1), msg)
	if got := c.status(); got != "SIP/2.0 200 OK" {
		t.Fatalf("answer %q", got)
	}
	pubs, err := st.List(t.Context(), siprule.AOR("1001", benchDomain))
	if err != nil || len(pubs) != 1 {
		t.Fatalf("publications %v, %v", pubs, err)
	}
	_, want, _ := strings.Cut(string(msg), "\r\n\r\n")
	clear(msg) // the message's bytes are not the body's
	if body := pubs[0].Body; string(body) != want {
		t.Fatalf("stored body %q, want %q", body, want)
	}
}

package server_test

import (
	"bytes"
	"context"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"log/slog"

	"github.com/emiago/sipgo/sip"
	"github.com/presencehub/presencehub/server"
	"github.com/presencehub/presencehub/server/auth"
	"github.com/presencehub/presencehub/server/servertest"
)

// startPBXListener serves plain SIP on 127.0.0.1 UDP and TCP for the hub.
func startPBXListener(t *testing.T, hub *servertest.Hub) (udpAddr, tcpAddr string) {
	t.Helper()
	udp, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tcp, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- hub.Server.ServeSIP(ctx, udp, tcp) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("ServeSIP: %v", err)
		}
	})
	return udp.LocalAddr().String(), tcp.Addr().String()
}

// exchange sends one SIP message over plain UDP or TCP and reads the answer.
func exchange(t *testing.T, network, addr string, msg []byte) *sip.Response {
	t.Helper()
	conn, err := net.DialTimeout(network, addr, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// The top Via names this socket, with a new branch (a capture's Via named Kamailio's).
	msg = topVia.ReplaceAll(msg, []byte("Via: SIP/2.0/"+strings.ToUpper(network)+" "+conn.LocalAddr().String()+";branch="+sip.GenerateBranch()))
	if head, body, ok := bytes.Cut(msg, []byte("\r\n\r\n")); ok && len(body) > 0 {
		// Keep Content-Length true to the (edited) body, as a stream transport needs.
		head = regexp.MustCompile(`Content-Length: \d+`).ReplaceAll(head, []byte("Content-Length: "+strconv.Itoa(len(body))))
		msg = append(append(head, "\r\n\r\n"...), body...)
	}
	if _, err := conn.Write(msg); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(3 * time.Second))
	buf := make([]byte, 65535)
	n, err := conn.Read(buf)
	if err != nil {
		t.Fatalf("no answer over %s: %v", network, err)
	}
	m, err := sip.ParseMessage(buf[:n])
	if err != nil {
		t.Fatalf("unparsable answer: %v\n%s", err, buf[:n])
	}
	return m.(*sip.Response)
}

var topVia = regexp.MustCompile(`Via: SIP/2.0/[A-Z]+ [^;\r\n]+;branch=[^;\r\n]+`)

// captured returns a PUBLISH that Kamailio sent in cmd/presencehub's
// Kamailio test (testdata/pbx/kamailio, written by -pbx.capture).
func captured(t *testing.T, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "testdata", "pbx", "kamailio", name))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// kamailioPublish is pua_dialoginfo's PUBLISH for a ringing callee.
func kamailioPublish(t *testing.T) []byte { return captured(t, "06-dialog-1001-early.sip") }

// withHeader sets (or with value "", removes) a header line of a raw message.
func withHeader(msg []byte, name, value string) []byte {
	re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + `:[^\r\n]*\r\n`)
	msg = re.ReplaceAll(msg, nil)
	if value == "" {
		return msg
	}
	head, body, _ := bytes.Cut(msg, []byte("\r\n\r\n"))
	out := append([]byte(nil), head...) // head shares msg's array with body
	return append(append(out, "\r\n"+name+": "+value+"\r\n\r\n"...), body...)
}

func replace(msg []byte, old, new string) []byte {
	return bytes.Replace(msg, []byte(old), []byte(new), 1)
}

// baresipPIDF is the body baresip 1.0 publishes before its status is set
// (modules/presence/publisher.c).
const baresipPIDF = "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"no\"?>\r\n" +
	"<presence xmlns=\"urn:ietf:params:xml:ns:pidf\"\r\n    xmlns:dm=\"urn:ietf:params:xml:ns:pidf:data-model\"\r\n" +
	"    xmlns:rpid=\"urn:ietf:params:xml:ns:pidf:rpid\"\r\n    entity=\"sip:1003@hub.test\">\r\n" +
	"  <dm:person id=\"p4159\"><rpid:activities/></dm:person>\r\n  <tuple id=\"t4109\">\r\n    <status>\r\n" +
	"      <basic>unknown</basic>\r\n    </status>\r\n    <contact>sip:1003@hub.test</contact>\r\n  </tuple>\r\n</presence>\r\n"

// Every quirk of a real publisher is accepted, played over UDP from what
// Kamailio 5.6 really sent (and baresip's body): liberal in what a
// publisher sends.
func TestPBX_PublisherQuirks_Accepted(t *testing.T) {
	hub := servertest.Start(t, servertest.Options{Configure: func(c *server.Config) {
		c.SIPTrusted = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
	}})
	udpAddr, _ := startPBXListener(t, hub)
	etag := map[string]string{} // per fixture: the SIP-ETag it was answered with
	for _, tt := range []struct {
		name    string
		msg     func(t *testing.T) []byte
		expires string // the answer's Expires
		keep    string // remember the SIP-ETag under this name
	}{
		{"Kamailio caller's first PUBLISH: <state>Trying</state>", func(t *testing.T) []byte {
			return captured(t, "04-dialog-1002-trying.sip")
		}, "43201", ""},
		{"pua_usrloc PIDF with entity=\"1001@hub.test\" (no scheme)", func(t *testing.T) []byte {
			return captured(t, "01-presence-1001-open.sip")
		}, "601", "presence-1001"},
		{"callee early", func(t *testing.T) []byte { return kamailioPublish(t) }, "43201", "dialog-1001"},
		{"hang-up: terminated with Expires: 11 (below the 60 s minimum), SIP-If-Match", func(t *testing.T) []byte {
			return withHeader(captured(t, "10-dialog-1001-terminated.sip"), "SIP-If-Match", etag["dialog-1001"])
		}, "11", "terminated-1001"},
		{"refresh of a terminated state with Expires: 5", func(t *testing.T) []byte {
			m := withHeader(captured(t, "38-presence-1001-refresh-expires0.sip"), "SIP-If-Match", etag["terminated-1001"])
			return withHeader(withHeader(m, "Event", "dialog"), "Expires", "5")
		}, "5", ""},
		{"terminated with Expires: 11 as a first PUBLISH (no SIP-If-Match)", func(t *testing.T) []byte {
			return withHeader(captured(t, "09-dialog-1002-terminated.sip"), "SIP-If-Match", "")
		}, "11", ""},
		{"unregister: Expires: 0 without body (pua_usrloc)", func(t *testing.T) []byte {
			return withHeader(captured(t, "38-presence-1001-refresh-expires0.sip"), "SIP-If-Match", etag["presence-1001"])
		}, "0", ""},
		{"baresip <basic>unknown</basic>: a status without basic", func(t *testing.T) []byte {
			m := withHeader(replace(captured(t, "01-presence-1001-open.sip"), "1001@hub.test", "1003@hub.test"), "Expires", "600")
			head, _, _ := bytes.Cut(m, []byte("\r\n\r\n"))
			return append(append(append([]byte(nil), head...), "\r\n\r\n"...), baresipPIDF...)
		}, "600", ""},
		{"Request-URI host in capitals", func(t *testing.T) []byte {
			return replace(captured(t, "04-dialog-1002-trying.sip"), "PUBLISH sip:1002@hub.test", "PUBLISH sip:1002@HUB.Test")
		}, "43201", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			res := exchange(t, "udp", udpAddr, tt.msg(t))
			if res.StatusCode != 200 {
				t.Fatalf("got %d %s, want 200", res.StatusCode, res.Reason)
			}
			if got := header(res, "Expires"); got != tt.expires {
				t.Errorf("Expires %q, want %q", got, tt.expires)
			}
			if tt.keep != "" {
				etag[tt.keep] = header(res, "SIP-ETag")
			}
		})
	}
}

// Every refusal names its real cause in the reason phrase (and the header
// that goes with it), so a PBX admin reading a trace knows what to change.
func TestPBX_Refusals_ReasonNamesTheCause(t *testing.T) {
	hub := servertest.Start(t, servertest.Options{Configure: func(c *server.Config) {
		c.SIPTrusted = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
	}})
	udpAddr, _ := startPBXListener(t, hub)
	early := func(t *testing.T) []byte { return kamailioPublish(t) }
	for _, tt := range []struct {
		name   string
		msg    []byte
		code   int
		reason string
		header string // "Name: value" the answer must carry
	}{
		{"Request-URI in another domain", replace(early(t), "PUBLISH sip:1001@hub.test", "PUBLISH sip:1001@pbx.example.org"),
			403, "Forbidden - Request-URI domain pbx.example.org is not this hub's domain hub.test", ""},
		{"short Expires for state that goes on", withHeader(early(t), "Expires", "30"),
			423, "Interval Too Brief - at least 60 s for state that goes on", "Min-Expires: 60"},
		{"presence with a short Expires (open or closed goes on)", withHeader(captured(t, "01-presence-1001-open.sip"), "Expires", "30"),
			423, "Interval Too Brief - at least 60 s for state that goes on", "Min-Expires: 60"},
		{"dialog state outside RFC 4235", replace(early(t), "<state>early</state>", "<state>ringing</state>"),
			400, `Bad Request: dialog-info: state "ringing" is none of trying, proceeding, early, confirmed, terminated`, ""},
		{"dialog-info under another media type", withHeader(early(t), "Content-Type", "application/pidf+xml"),
			415, "Unsupported Media Type - Event dialog takes application/dialog-info+xml", "Accept: application/dialog-info+xml"},
		{"an event package the hub does not take", withHeader(early(t), "Event", "conference"),
			489, `Bad Event: "conference" is not published here (presence, dialog, message-summary are)`, "Allow-Events: presence, dialog, message-summary"},
		{"no Event header", withHeader(early(t), "Event", ""),
			489, "Bad Event: no Event header", ""},
		{"entity of another extension", replace(early(t), `entity="sip:1001@hub.test"`, `entity="sip:1002@hub.test"`),
			400, "Bad Request: the body's entity is not the Request-URI's AOR", ""},
		{"unknown SIP-If-Match", withHeader(early(t), "SIP-If-Match", "no-such-etag"),
			412, "Conditional Request Failed - no live publication has this SIP-If-Match entity-tag", ""},
		{"Expires not a number", withHeader(early(t), "Expires", "soon"),
			400, "Bad Request - invalid Expires", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			res := exchange(t, "udp", udpAddr, tt.msg)
			if res.StatusCode != tt.code || !strings.Contains(res.Reason, tt.reason) {
				t.Fatalf("got %d %q, want %d with %q", res.StatusCode, res.Reason, tt.code, tt.reason)
			}
			if tt.header != "" {
				name, value, _ := strings.Cut(tt.header, ": ")
				if got := header(res, name); got != value {
					t.Errorf("%s: %q, want %q", name, got, value)
				}
			}
		})
	}
}

// Plain-SIP requests and answers are logged at debug (method, source, AOR,
// status), refusals at info with their reason, at most 20 per 10 s.
func TestPBX_Logging_DebugPerRequest_RefusalsAtInfoRateLimited(t *testing.T) {
	var logs lockedBuffer
	hub := servertest.Start(t, servertest.Options{Configure: func(c *server.Config) {
		c.SIPTrusted = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
		c.Logger = slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}})
	udpAddr, _ := startPBXListener(t, hub)
	if res := exchange(t, "udp", udpAddr, kamailioPublish(t)); res.StatusCode != 200 {
		t.Fatalf("PUBLISH: %d", res.StatusCode)
	}
	foreign := replace(kamailioPublish(t), "PUBLISH sip:1001@hub.test", "PUBLISH sip:1001@pbx.example.org")
	for range 25 {
		exchange(t, "udp", udpAddr, foreign)
	}
	var debug, info, refusedDebug int
	for _, line := range strings.Split(logs.String(), "\n") {
		switch {
		case strings.Contains(line, `"msg":"plain sip"`) && strings.Contains(line, `"level":"DEBUG"`):
			debug++
			for _, want := range []string{`"method":"PUBLISH"`, `"source":"127.0.0.1:`, `"aor":"sip:1001@hub.test"`, `"status":200`} {
				if !strings.Contains(line, want) {
					t.Errorf("debug line lacks %s: %s", want, line)
				}
			}
		case strings.Contains(line, `"msg":"plain sip refused"`) && strings.Contains(line, `"level":"INFO"`):
			info++
			if !strings.Contains(line, `"reason":"Forbidden - Request-URI domain pbx.example.org is not this hub's domain hub.test"`) || !strings.Contains(line, `"status":403`) {
				t.Errorf("info line: %s", line)
			}
		case strings.Contains(line, `"msg":"plain sip refused"`):
			refusedDebug++
		}
	}
	if debug != 1 || info != 20 || refusedDebug != 5 {
		t.Fatalf("debug %d, info %d, refusals past the limit at debug %d; want 1, 20, 5\n%s", debug, info, refusedDebug, logs.String())
	}
}

// A PBX publishes its extensions' dialog state over plain SIP; browsers
// watching over WebSocket see it.
func TestPBX_PlainSIPPublish_ReachesWebSocketWatchers(t *testing.T) {
	hub := servertest.Start(t, servertest.Options{Configure: func(c *server.Config) {
		c.SIPTrusted = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
	}})
	udpAddr, tcpAddr := startPBXListener(t, hub)
	w, opts := newWatcher()
	c := hub.Dial(testCtx(t), "2001", opts)
	do(t, c, subscribeReq(t, c, "2001", "1001", "dialog"))
	w.next(t)

	res := exchange(t, "udp", udpAddr, kamailioPublish(t))
	if res.StatusCode != 200 || res.GetHeader("SIP-ETag") == nil {
		t.Fatalf("PUBLISH over UDP: %d %s", res.StatusCode, res.Reason)
	}
	n := w.next(t)
	if lamp(n.Body()) != "early" || !strings.Contains(string(n.Body()), "sip:1002@hub.test") {
		t.Fatalf("watcher got %s", n.Body())
	}
	for _, tt := range []struct {
		name, network, msg string
		code               int
	}{
		{"OPTIONS over TCP (qualify)", "tcp", "OPTIONS sip:hub.test SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKkam1\r\nFrom: <sip:pbx@hub.test>;tag=o\r\nTo: <sip:hub.test>\r\nCall-ID: q1\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n", 200},
		{"INVITE → 405", "udp", "INVITE sip:1001@hub.test SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKkam1\r\nFrom: <sip:pbx@hub.test>;tag=o\r\nTo: <sip:1001@hub.test>\r\nCall-ID: i1\r\nCSeq: 1 INVITE\r\nContact: <sip:pbx@127.0.0.1>\r\nContent-Length: 0\r\n\r\n", 405},
		{"PUBLISH over TCP", "tcp", string(bytes.Replace(kamailioPublish(t), []byte("<state>early</state>"), []byte("<state>confirmed</state>"), 1)), 200},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if res := exchange(t, tt.network, map[string]string{"udp": udpAddr, "tcp": tcpAddr}[tt.network], []byte(tt.msg)); res.StatusCode != tt.code {
				t.Fatalf("got %d %s, want %d", res.StatusCode, res.Reason, tt.code)
			}
		})
	}
	if lamp(w.next(t).Body()) != "confirmed" {
		t.Fatal("watcher did not see the TCP PUBLISH")
	}
}

func TestPBX_UntrustedAddressWithoutToken_Returns401(t *testing.T) {
	hub := servertest.Start(t, servertest.Options{Configure: func(c *server.Config) {
		c.SIPTrusted = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	}})
	udpAddr, _ := startPBXListener(t, hub)
	if res := exchange(t, "udp", udpAddr, kamailioPublish(t)); res.StatusCode != 401 {
		t.Fatalf("untrusted PUBLISH: %d, want 401", res.StatusCode)
	}
	// A Bearer on the request (RFC 8898) is accepted from anywhere.
	tok := hub.Token("pbx", func(c *auth.Claims) { c.Publish = []string{"*"} })
	msg := bytes.Replace(kamailioPublish(t), []byte("Event: dialog\r\n"), []byte("Event: dialog\r\nAuthorization: Bearer "+tok+"\r\n"), 1)
	if res := exchange(t, "udp", udpAddr, msg); res.StatusCode != 200 {
		t.Fatalf("PUBLISH with Bearer: %d %s", res.StatusCode, res.Reason)
	}
}

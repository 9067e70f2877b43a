package web_test

import (
	"context"
	"flag"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/presencehub/presencehub/internal/sipclient"
	"github.com/presencehub/presencehub/server"
	"github.com/presencehub/presencehub/server/auth"
	"github.com/presencehub/presencehub/server/servertest"
)

var updateScreenshot = flag.Bool("update-screenshot", false,
	"write the console screenshot to web/testdata/console.png (for the README)")

// The console in real headless Chromium against a real hub: lamps follow published dialog
// state, survive a hub restart without ever showing stale state, and real SIP.js and JsSIP
// clients in the same browser publish and watch alongside it.
func TestConsole_Chromium(t *testing.T) {
	b := startBrowser(t)

	t.Run("LampFollowsIdleRingingBusyIdle", func(t *testing.T) {
		hub := servertest.Start(t, servertest.Options{})
		pub := newPublisher(t, hub)
		openConsole(t, b, hub, "console", "1001:Front desk,1002", nil)

		// Nothing published: the composed presence is closed, no dialog: offline.
		b.waitLamp(t, "console", "1001", "offline")
		b.waitLamp(t, "console", "1002", "offline")
		// The token left the address bar; the extensions stay (bookmarkable).
		var href string
		decode(t, b.eval(t, "console", `() => location.href`, nil), &href)
		if strings.Contains(href, "token") || !strings.Contains(href, "ext=") {
			t.Errorf("address bar %q: want the token gone and the extensions kept", href)
		}

		pub.publish("1001", "presence", pidf("1001", "open", "Back at 2 pm", false))
		l := b.waitLamp(t, "console", "1001", "idle")
		if !strings.Contains(l.Text, "Back at 2 pm") || !strings.Contains(l.Label, "Front desk, extension 1001: idle") {
			t.Errorf("idle lamp %+v: want its name, state and presence note", l)
		}

		pub.publish("1001", "dialog", dialogInfo("1001", dialog("c1", "recipient", "early", "sip:2001@hub.test", "Carol")))
		l = b.waitLamp(t, "console", "1001", "ringing")
		if !strings.Contains(l.Text, "Call from Carol (2001)") || !strings.Contains(l.Label, "ringing, call from Carol") {
			t.Errorf("ringing lamp %+v: want the caller", l)
		}

		pub.publish("1001", "dialog", dialogInfo("1001", dialog("c1", "recipient", "confirmed", "sip:2001@hub.test", "Carol")))
		l = b.waitLamp(t, "console", "1001", "busy")
		if !strings.Contains(l.Text, "With Carol") {
			t.Errorf("busy lamp %+v: want the other party", l)
		}

		pub.publish("1001", "dialog", dialogInfo("1001", dialog("c1", "recipient", "terminated", "sip:2001@hub.test", "Carol")))
		b.waitLamp(t, "console", "1001", "idle")
		b.waitLamp(t, "console", "1002", "offline")

		// The live region told a screen reader about the call.
		b.do(t, "waitFor", map[string]any{"page": "console", "fn": `(want) => {
			const said = document.getElementById('announce').innerText;
			return want.every((w) => said.includes(w));
		}`, "arg": []string{"Front desk: idle", "Front desk: ringing, call from Carol", "Front desk: busy, with Carol"}})
		var said string
		decode(t, b.eval(t, "console", `() => document.getElementById('announce').innerText`, nil), &said)
		if strings.Contains(said, "offline") || strings.Contains(said, "1002") {
			t.Errorf("live region %q: an extension settling after page load is not news", said)
		}

		// Hold as a PBX signals it in dialog-info (RFC 4235 §4.1.6.2): the hub
		// keeps the local target's +sip.rendering=no through composition.
		pub.publish("1001", "dialog", dialogInfo("1001", `<dialog id="c2" call-id="c2-call" direction="recipient"><state>confirmed</state>`+
			`<local><identity>sip:1001@hub.test</identity><target uri="sip:1001@hub.test"><param pname="+sip.rendering" pvalue="no"/></target></local>`+
			`<remote><identity display="Carol">sip:2001@hub.test</identity></remote></dialog>`))
		b.waitLamp(t, "console", "1001", "hold")
		pub.publish("1001", "dialog", dialogInfo("1001", dialog("c2", "recipient", "terminated", "sip:2001@hub.test", "Carol")))
		b.waitLamp(t, "console", "1001", "idle")
		checkPageLog(t, b, "console", false)
	})

	t.Run("HubRestart_LampsUnknownThenRecover", func(t *testing.T) {
		hub := servertest.Start(t, servertest.Options{})
		pub := newPublisher(t, hub)
		pub.publish("1001", "presence", pidf("1001", "open", "", false))
		pub.publish("1001", "dialog", dialogInfo("1001", dialog("c1", "recipient", "confirmed", "sip:2001@hub.test", "")))
		// The call timer counts from the hub's stamp (<since>), not from when the console
		// first saw the call: opened 2 s after the answer, it shows at least 0:02.
		time.Sleep(2100 * time.Millisecond)
		openConsole(t, b, hub, "restart", "1001,1002", nil)
		if l := b.waitLamp(t, "restart", "1001", "busy"); callSeconds(t, l) < 2 {
			t.Errorf("call timer of a call answered 2 s before the console opened: %q", l.Text)
		}
		b.waitLamp(t, "restart", "1002", "offline")
		pub.close()

		// A crash: the socket just closes. Lamps must not keep showing the old state.
		hub.Close()
		b.waitLamp(t, "restart", "1001", "unknown")
		b.waitLamp(t, "restart", "1002", "unknown")
		waitConn(t, b, "restart", "reconnecting", "Disconnected: reconnecting in")

		hub = servertest.Start(t, servertest.Options{DBPath: hub.DBPath, Secret: hub.Secret, Addr: hub.Addr})
		// The publication and its stamp survived in the database: the timer goes on.
		if l := b.waitLamp(t, "restart", "1001", "busy"); callSeconds(t, l) < 2 {
			t.Errorf("call timer after a hub restart: %q, want the count kept", l.Text)
		}
		b.waitLamp(t, "restart", "1002", "offline")
		waitConn(t, b, "restart", "connected", "Connected")

		// A graceful stop: final NOTIFYs (deactivated), then close 1001.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := hub.Shutdown(ctx); err != nil {
			t.Fatalf("shutdown: %v", err)
		}
		b.waitLamp(t, "restart", "1001", "unknown")
		servertest.Start(t, servertest.Options{DBPath: hub.DBPath, Secret: hub.Secret, Addr: hub.Addr}) // stopped by t.Cleanup
		b.waitLamp(t, "restart", "1001", "busy")
		b.waitLamp(t, "restart", "1002", "offline")
		checkPageLog(t, b, "restart", true)
	})

	t.Run("SIPjsPublishes_JsSIPWatches_ConsoleShows", func(t *testing.T) {
		pages := startPageServer(t)
		hub := servertest.Start(t, servertest.Options{Configure: func(c *server.Config) {
			c.OriginPatterns = []string{pages.Listener.Addr().String()}
		}})
		openConsole(t, b, hub, "console", "1004", nil)
		b.waitLamp(t, "console", "1004", "offline")

		// JsSIP (bundled by esbuild) watches 1004 from another page.
		b.do(t, "open", map[string]any{"page": "jssip", "url": pages.URL + "/jssip-subscribe.html"})
		b.eval(t, "jssip", `(a) => window.watcher.start(a)`, map[string]string{
			"url": hub.WS + "?access_token=" + hub.Token("1005", nil), "user": "1005", "domain": servertest.Domain, "target": "1004",
		})
		waitJsSIPState(t, b, "idle")

		// SIP.js (native ES modules from node_modules) publishes as 1004.
		b.do(t, "open", map[string]any{"page": "sipjs", "url": pages.URL + "/sipjs-publish.html"})
		b.eval(t, "sipjs", `(a) => window.phone.start(a)`, map[string]string{
			"url": hub.WS + "?access_token=" + hub.Token("1004", nil), "user": "1004", "domain": servertest.Domain,
		})
		sipjsPublish(t, b, "presence", pidf("1004", "open", "SIP.js in Chromium", false))
		b.waitLamp(t, "console", "1004", "idle")

		sipjsPublish(t, b, "dialog", dialogInfo("1004", dialog("s1", "recipient", "early", "sip:3001@hub.test", "Dave")))
		l := b.waitLamp(t, "console", "1004", "ringing")
		if !strings.Contains(l.Text, "Dave") || !strings.Contains(l.Text, "SIP.js in Chromium") {
			t.Errorf("ringing lamp %+v: want caller and note", l)
		}
		waitJsSIPState(t, b, "early")

		sipjsPublish(t, b, "dialog", dialogInfo("1004", dialog("s1", "recipient", "confirmed", "sip:3001@hub.test", "Dave")))
		b.waitLamp(t, "console", "1004", "busy")
		waitJsSIPState(t, b, "confirmed")

		var ans []any
		decode(t, b.eval(t, "sipjs", `() => window.phone.unpublish('dialog')`, nil), &ans)
		b.waitLamp(t, "console", "1004", "idle")
		waitJsSIPState(t, b, "idle")

		decode(t, b.eval(t, "sipjs", `() => window.phone.unpublish('presence')`, nil), &ans)
		b.waitLamp(t, "console", "1004", "offline")
		for _, p := range []string{"console", "jssip", "sipjs"} {
			checkPageLog(t, b, p, false)
			b.do(t, "close", map[string]any{"page": p})
		}
	})

	t.Run("EveryState_KeyboardNarrowScreen_Screenshot", func(t *testing.T) {
		hub := servertest.Start(t, servertest.Options{})
		pub := newPublisher(t, hub)
		pub.publish("2001", "presence", pidf("2001", "open", "", false))
		pub.publish("2002", "presence", pidf("2002", "open", "", false))
		pub.publish("2002", "dialog", dialogInfo("2002", dialog("a", "recipient", "early", "sip:5551234@hub.test", "Carol Jones")))
		pub.publish("2003", "presence", pidf("2003", "open", "", false))
		pub.publish("2003", "dialog", dialogInfo("2003", dialog("b", "initiator", "early", "sip:2005@hub.test", "")))
		pub.publish("2004", "presence", pidf("2004", "open", "Call me after 3", false))
		pub.publish("2004", "dialog", dialogInfo("2004", dialog("c", "recipient", "confirmed", "sip:2007@hub.test", "Grace")))
		pub.publish("2005", "presence", pidf("2005", "open", "On hold", true))
		pub.publish("2005", "dialog", dialogInfo("2005", dialog("d", "initiator", "confirmed", "sip:5559876@hub.test", "Acme Support")))
		// 2006 publishes nothing: offline. The console's token may not watch 2007: unknown.
		exts := "2001:Reception,2002:Alice Martin,2003:Bob Chen,2004:Sales,2005:Dana Ortiz,2006:Warehouse,2007:Board room"
		openConsole(t, b, hub, "all", exts, func(c *auth.Claims) {
			c.Subscribe = []string{"2001", "2002", "2003", "2004", "2005", "2006"}
		})
		want := map[string]string{"2001": "idle", "2002": "ringing", "2003": "calling", "2004": "busy",
			"2005": "hold", "2006": "offline", "2007": "unknown"}
		for ext, state := range want {
			b.waitLamp(t, "all", ext, state)
		}
		// Why 2007 is unknown is written on it.
		b.do(t, "waitFor", map[string]any{"page": "all", "fn": `() =>
			/Cannot watch: not allowed/.test(document.querySelector('[data-ext="2007"]').innerText)`})

		path := filepath.Join(t.TempDir(), "console.png")
		if *updateScreenshot {
			path, _ = filepath.Abs(filepath.Join("testdata", "console.png"))
		}
		b.do(t, "screenshot", map[string]any{"page": "all", "path": path})
		t.Logf("screenshot: %s", path)

		// Keyboard: Tab reaches the search box, then the first lamp; arrows move along the grid,
		// Home/End jump.
		var focused string
		decode(t, b.do(t, "press", map[string]any{"page": "all", "keys": []string{"Tab"}}), &focused)
		if focused != "search" {
			t.Errorf("Tab focused %q, want the search box", focused)
		}
		decode(t, b.do(t, "press", map[string]any{"page": "all", "keys": []string{"Tab"}}), &focused)
		if focused != "2001" {
			t.Errorf("Tab twice focused %q, want the first lamp 2001", focused)
		}
		decode(t, b.do(t, "press", map[string]any{"page": "all", "keys": []string{"ArrowRight", "ArrowRight"}}), &focused)
		if focused != "2003" {
			t.Errorf("ArrowRight twice focused %q, want 2003", focused)
		}
		decode(t, b.do(t, "press", map[string]any{"page": "all", "keys": []string{"End"}}), &focused)
		if focused != "2007" {
			t.Errorf("End focused %q, want 2007", focused)
		}
		var labels []lamp
		decode(t, b.do(t, "lamps", map[string]any{"page": "all"}), &labels)
		for _, l := range labels {
			if l.Label == "" || !strings.Contains(l.Label, l.Ext) {
				t.Errorf("lamp %s has no readable aria-label: %q", l.Ext, l.Label)
			}
		}

		// 360 px (a phone): two columns, nothing wider than the screen.
		b.do(t, "resize", map[string]any{"page": "all", "width": 360, "height": 740})
		b.do(t, "press", map[string]any{"page": "all", "keys": []string{"Home"}})
		var layout struct {
			Scroll, Client, Columns int
		}
		decode(t, b.eval(t, "all", `() => ({
			Scroll: document.documentElement.scrollWidth,
			Client: document.documentElement.clientWidth,
			Columns: getComputedStyle(document.getElementById('lamps')).gridTemplateColumns.split(' ').length,
		})`, nil), &layout)
		if layout.Scroll > layout.Client || layout.Columns != 2 {
			t.Errorf("at 360 px: page %d px wide in %d px, %d lamp columns; want no sideways scrolling, 2 columns",
				layout.Scroll, layout.Client, layout.Columns)
		}
		if *updateScreenshot {
			p, _ := filepath.Abs(filepath.Join("testdata", "console-360.png"))
			b.do(t, "eval", map[string]any{"page": "all", "fn": `() => document.activeElement.blur()`})
			b.do(t, "screenshot", map[string]any{"page": "all", "path": p})
		}
		// The DOM-based readers (Node has no DOMParser, so they are checked here): dialog-info
		// with a <param> on the local target (RFC 4235 §4.1.6.2) and PIDF with RPID and notes.
		var parsed struct {
			Hold, Busy string
			Pidf       struct {
				Basic      string
				Activities []string
				Note       string
			}
		}
		decode(t, b.eval(t, "all", `async () => {
			const blf = await import('/blf.js');
			const di = (rendering) => blf.readDialogInfo(blf.parseXml(
				'<dialog-info xmlns="urn:ietf:params:xml:ns:dialog-info" version="3" state="full" entity="sip:9@hub.test">' +
				'<dialog id="x" direction="initiator"><state>confirmed</state><local><identity display="Nine">sip:9@hub.test</identity>' +
				'<target uri="sip:9@pc.invalid"><param pname="+sip.rendering" pvalue="' + rendering + '"/></target></local>' +
				'<remote><identity display="Far">sip:7@elsewhere.test</identity></remote></dialog></dialog-info>'));
			const p = blf.readPidf(blf.parseXml(
				'<presence xmlns="urn:ietf:params:xml:ns:pidf" xmlns:dm="urn:ietf:params:xml:ns:pidf:data-model" ' +
				'xmlns:rpid="urn:ietf:params:xml:ns:pidf:rpid" entity="sip:9@hub.test">' +
				'<tuple id="a"><status><basic>closed</basic></status><note>tuple note</note></tuple>' +
				'<tuple id="b"><status><basic>open</basic></status></tuple>' +
				'<dm:person id="p"><rpid:activities><rpid:on-the-phone/></rpid:activities><dm:note>person note</dm:note></dm:person></presence>'));
			const hold = blf.lampOf(di('no'), null), busy = blf.lampOf(di('yes'), null);
			return { Hold: hold.state + ' ' + hold.peer, Busy: busy.state, Pidf: p };
		}`, nil), &parsed)
		if parsed.Hold != "hold Far (7@elsewhere.test)" || parsed.Busy != "busy" ||
			parsed.Pidf.Basic != "open" || strings.Join(parsed.Pidf.Activities, ",") != "on-the-phone" || parsed.Pidf.Note != "person note" {
			t.Errorf("readers in the browser: %+v", parsed)
		}
		checkPageLog(t, b, "all", false)
		b.do(t, "close", map[string]any{"page": "all"})
	})
}

// openConsole opens the console of hub in a new tab named page, as the URL that presencehub
// prints: ?token=...&ext=... . fn changes the console token's claims.
func openConsole(t *testing.T, b *browser, hub *servertest.Hub, page, exts string, fn func(*auth.Claims)) {
	t.Helper()
	tok := hub.Token("console", func(c *auth.Claims) {
		c.Publish = []string{}
		if fn != nil {
			fn(c)
		}
	})
	b.do(t, "open", map[string]any{"page": page, "url": hub.URL + "/?token=" + url.QueryEscape(tok) + "&ext=" + url.QueryEscape(exts)})
}

// waitConn waits for the connection status element to show state and text.
func waitConn(t *testing.T, b *browser, page, state, text string) {
	t.Helper()
	b.do(t, "waitFor", map[string]any{"page": page, "arg": []string{state, text}, "timeout": 15000, "fn": `([state, text]) => {
		const el = document.getElementById('conn');
		return el.dataset.conn === state && el.innerText.includes(text);
	}`})
}

// checkPageLog fails on page errors and Content-Security-Policy violations; failed WebSocket
// requests are expected only when the hub was stopped on purpose.
func checkPageLog(t *testing.T, b *browser, page string, hubStopped bool) {
	t.Helper()
	var log []string
	decode(t, b.do(t, "log", map[string]any{"page": page}), &log)
	for _, line := range log {
		switch {
		case strings.HasPrefix(line, "pageerror"), strings.Contains(line, "Content Security Policy"),
			strings.Contains(line, "Refused to"):
			t.Errorf("%s: %s", page, line)
		case strings.HasPrefix(line, "requestfailed") && !hubStopped:
			t.Errorf("%s: %s", page, line)
		}
	}
}

func sipjsPublish(t *testing.T, b *browser, event, body string) {
	t.Helper()
	var ans []any
	decode(t, b.eval(t, "sipjs", `([event, body]) => window.phone.publish(event, body)`, []string{event, body}), &ans)
	if len(ans) != 2 || ans[1] != float64(200) {
		t.Fatalf("SIP.js PUBLISH %s answered %v, want 200", event, ans)
	}
}

func waitJsSIPState(t *testing.T, b *browser, state string) {
	t.Helper()
	b.do(t, "waitFor", map[string]any{"page": "jssip", "arg": state, "timeout": 10000,
		"fn": `(state) => { const s = window.watcher.states(); return s.length > 0 && s[s.length - 1] === state; }`})
}

// startPageServer serves the SIP.js and JsSIP test pages, SIP.js's ES modules from
// node_modules, and JsSIP bundled for the browser by esbuild. These are test-only: nothing from
// node_modules is embedded in the hub.
func startPageServer(t *testing.T) *httptest.Server {
	t.Helper()
	bundle := filepath.Join(t.TempDir(), "jssip.js")
	esbuild := exec.Command(filepath.Join("node_modules", ".bin", "esbuild"), "node_modules/jssip/lib/JsSIP.js",
		"--bundle", "--format=iife", "--global-name=JsSIP", "--platform=browser", "--log-level=warning",
		"--outfile="+bundle)
	esbuild.Dir = browserDir
	if out, err := esbuild.CombinedOutput(); err != nil {
		t.Fatalf("esbuild JsSIP: %v\n%s", err, out)
	}
	mux := http.NewServeMux()
	mux.Handle("/", http.FileServer(http.Dir(filepath.Join(browserDir, "pages"))))
	mux.Handle("/node_modules/sip.js/", http.StripPrefix("/node_modules/sip.js/",
		http.FileServer(http.Dir(filepath.Join(browserDir, "node_modules", "sip.js")))))
	mux.HandleFunc("/jssip.js", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
		http.ServeFile(w, r, bundle)
	})
	js := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, ".js") { // modules need a JavaScript type, whatever mime.types says
			w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
		}
		mux.ServeHTTP(w, r)
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &httptest.Server{Listener: ln, Config: &http.Server{Handler: js, ReadHeaderTimeout: 5 * time.Second}}
	srv.Start()
	t.Cleanup(srv.Close)
	return srv
}

// publisher PUBLISHes state for any extension over raw SIP (a PBX-style token: publish ["*"]),
// modifying its earlier publication of the same (extension, event) with SIP-If-Match.
type publisher struct {
	t     *testing.T
	cl    *sipclient.Client
	mu    sync.Mutex
	etags map[string]string
}

func newPublisher(t *testing.T, hub *servertest.Hub) *publisher {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cl, err := sipclient.Dial(ctx, hub.WS, sipclient.Options{Token: hub.Token("pbx", func(c *auth.Claims) {
		c.Publish = []string{"*"}
	})})
	if err != nil {
		t.Fatalf("publisher: %v", err)
	}
	p := &publisher{t: t, cl: cl, etags: map[string]string{}}
	t.Cleanup(cl.Close)
	return p
}

func (p *publisher) close() { p.cl.Close() }

func (p *publisher) publish(ext, event, body string) {
	p.t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	aor := servertest.AOR(ext)
	req, err := p.cl.NewRequest(sip.PUBLISH, aor, aor)
	if err != nil {
		p.t.Fatal(err)
	}
	req.AppendHeader(sip.NewHeader("Event", event))
	req.AppendHeader(sip.NewHeader("Expires", "600"))
	if etag := p.etags[ext+" "+event]; etag != "" {
		req.AppendHeader(sip.NewHeader("SIP-If-Match", etag))
	}
	ct := sip.ContentTypeHeader(map[string]string{"dialog": "application/dialog-info+xml", "presence": "application/pidf+xml"}[event])
	req.AppendHeader(&ct)
	req.SetBody([]byte(body))
	res, err := p.cl.Do(ctx, req)
	if err != nil {
		p.t.Fatalf("PUBLISH %s %s: %v", ext, event, err)
	}
	if res.StatusCode != 200 {
		p.t.Fatalf("PUBLISH %s %s: %d %s\n%s", ext, event, res.StatusCode, res.Reason, body)
	}
	if h := res.GetHeader("SIP-ETag"); h != nil {
		p.etags[ext+" "+event] = strings.TrimSpace(h.Value())
	}
}

var dialogVersion struct {
	sync.Mutex
	n int
}

// dialogInfo is a full dialog-info document (RFC 4235) for ext with the given <dialog>s.
func dialogInfo(ext string, dialogs ...string) string {
	dialogVersion.Lock()
	v := dialogVersion.n
	dialogVersion.n++
	dialogVersion.Unlock()
	return `<?xml version="1.0" encoding="UTF-8"?>` + "\n" +
		`<dialog-info xmlns="urn:ietf:params:xml:ns:dialog-info" version="` + strconv.Itoa(v) +
		`" state="full" entity="` + servertest.AOR(ext) + `">` + strings.Join(dialogs, "") + `</dialog-info>`
}

func dialog(id, direction, state, remote, display string) string {
	r := ""
	if remote != "" {
		d := ""
		if display != "" {
			d = ` display="` + display + `"`
		}
		r = `<remote><identity` + d + `>` + remote + `</identity></remote>`
	}
	return fmt.Sprintf(`<dialog id="%s" call-id="%s-call" direction="%s"><state>%s</state>%s</dialog>`, id, id, direction, state, r)
}

// pidf is a PIDF document (RFC 3863); onThePhone adds an RPID person (RFC 4480) with that activity.
func pidf(ext, basic, note string, onThePhone bool) string {
	n := ""
	if note != "" {
		n = `<note>` + note + `</note>`
	}
	person := ""
	if onThePhone {
		person = `<dm:person id="p-` + ext + `"><rpid:activities><rpid:on-the-phone/></rpid:activities></dm:person>`
	}
	return `<?xml version="1.0" encoding="UTF-8"?>` + "\n" +
		`<presence xmlns="urn:ietf:params:xml:ns:pidf" xmlns:dm="urn:ietf:params:xml:ns:pidf:data-model" ` +
		`xmlns:rpid="urn:ietf:params:xml:ns:pidf:rpid" entity="` + servertest.AOR(ext) + `">` +
		`<tuple id="t-` + ext + `"><status><basic>` + basic + `</basic></status>` + n + `</tuple>` + person + `</presence>`
}

// callSeconds reads the call timer (m:ss or h:mm:ss) in a lamp's text.
func callSeconds(t *testing.T, l lamp) int {
	t.Helper()
	m := regexp.MustCompile(`(?:(\d+):)?(\d+):(\d\d)\b`).FindStringSubmatch(l.Text)
	if m == nil {
		t.Fatalf("no call timer in lamp %+v", l)
	}
	h, _ := strconv.Atoi(m[1])
	mm, _ := strconv.Atoi(m[2])
	ss, _ := strconv.Atoi(m[3])
	return h*3600 + mm*60 + ss
}

package web_test

import (
	"context"
	"fmt"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/presencehub/presencehub/internal/sipclient"
	"github.com/presencehub/presencehub/server/auth"
	"github.com/presencehub/presencehub/server/servertest"
)

const stormLamps = 500

// timerRE finds a call timer (m:ss) in a lamp's text.
var timerRE = regexp.MustCompile(`\d+:\d\d\b`)

// The console with 500 lamps in real Chromium holds one list subscription per event package,
// shows the voicemail count of the extensions that have messages, and follows a storm of changes (every extension rings, answers and hangs up or stays in a call,
// from four publishers at once) to the right final state, with the caller's name and number
// while ringing, the other party and a running timer in a call. The page's frame times during
// the storm are logged (requestAnimationFrame deltas and long tasks): a measurement, not a pass
// criterion; the README quotes them.
func TestConsole_Chromium_500LampsFollowAStorm(t *testing.T) {
	b := startBrowser(t)
	hub := servertest.Start(t, servertest.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	const publishers = 4
	var cls [publishers]*sipclient.Client
	for i := range cls {
		cl, err := sipclient.Dial(ctx, hub.WS, sipclient.Options{Token: hub.Token("pbx", func(c *auth.Claims) { c.Publish = []string{"*"} })})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(cl.Close)
		cls[i] = cl
	}
	exts := make([]string, stormLamps)
	var spec []string
	for i := range exts {
		exts[i] = strconv.Itoa(3000 + i)
		item := exts[i]
		if i%7 == 0 {
			item += ":Desk " + exts[i]
		}
		if i%100 == 0 {
			item = fmt.Sprintf("[Floor %d] %s", i/100+1, item)
		}
		spec = append(spec, item)
	}
	// Everyone is there (presence open) before the console opens; every fifth extension has
	// 1 to 4 new voicemails (RFC 3842).
	storm(t, ctx, cls[:], exts, func(i int, ext string) []pub {
		p := []pub{{"presence", pidf(ext, "open", "", false)}}
		if i%5 == 0 {
			p = append(p, pub{"message-summary", fmt.Sprintf("Messages-Waiting: yes\r\nVoice-Message: %d/2 (0/0)\r\n", i/5%4+1)})
		}
		return p
	})

	openConsoleAt(t, b, hub, "storm", strings.Join(spec, ","), 1280, 800)
	waitCount(t, b, "storm", `[data-state="idle"]`, stormLamps, 60000)

	b.eval(t, "storm", `() => {
		const frames = [];
		const long = [];
		const loaf = []; // long animation frames (> 50 ms): [total, script, style and layout]
		let last = 0, on = true;
		const tick = (ts) => { if (last) frames.push(ts - last); last = ts; if (on) requestAnimationFrame(tick); };
		requestAnimationFrame(tick);
		try {
			new PerformanceObserver((l) => { for (const e of l.getEntries()) long.push(e.duration); }).observe({ type: 'longtask' });
		} catch { /* no long task API */ }
		try {
			new PerformanceObserver((l) => {
				for (const e of l.getEntries()) {
					const script = e.scripts.reduce((s, x) => s + x.duration, 0);
					const layout = e.styleAndLayoutStart ? e.startTime + e.duration - e.styleAndLayoutStart : 0;
					loaf.push([e.duration, script, layout]);
				}
			}).observe({ type: 'long-animation-frame' });
		} catch { /* no long animation frame API */ }
		window.stormStats = () => { on = false; return { frames, long, loaf }; };
	}`, nil)

	// The storm: every lamp rings (caller named), is answered, and three of four hang up;
	// 2,000 PUBLISHes from four publishers as fast as the hub takes them.
	start := time.Now()
	storm(t, ctx, cls[:], exts, func(i int, ext string) []pub {
		caller := fmt.Sprintf("sip:55501%03d@hub.test", i)
		p := []pub{
			{"dialog", dialogInfo(ext, dialog("s"+ext, "recipient", "early", caller, "Caller "+ext))},
			{"dialog", dialogInfo(ext, dialog("s"+ext, "recipient", "confirmed", caller, "Caller "+ext))},
		}
		switch i % 4 {
		case 0: // hangs up
			p = append(p, pub{"dialog", dialogInfo(ext, dialog("s"+ext, "recipient", "terminated", caller, "Caller "+ext))})
		case 1: // a second call rings while in the first
			p = append(p, pub{"dialog", dialogInfo(ext,
				dialog("s"+ext, "recipient", "confirmed", caller, "Caller "+ext),
				dialog("r"+ext, "recipient", "early", "sip:2100@hub.test", "Second Caller"))})
		case 2: // stays in the call
		case 3: // goes away: presence closed after hanging up
			p = append(p, pub{"dialog", dialogInfo(ext, dialog("s"+ext, "recipient", "terminated", caller, "Caller "+ext))},
				pub{"presence", pidf(ext, "closed", "", false)})
		}
		return p
	})
	published := time.Since(start)
	want := map[string]int{"idle": stormLamps / 4, "ringing": stormLamps / 4, "busy": stormLamps / 4, "offline": stormLamps / 4}
	for state, n := range want {
		waitCount(t, b, "storm", `[data-state="`+state+`"]`, n, 60000)
	}
	settled := time.Since(start)
	time.Sleep(1500 * time.Millisecond) // a second of timers ticking after the storm
	var stats struct {
		Frames []float64
		Long   []float64
		LoAF   [][3]float64
	}
	decode(t, b.eval(t, "storm", `() => window.stormStats()`, nil), &stats)

	// Per lamp: the right state and words.
	var lamps []lamp
	decode(t, b.do(t, "lamps", map[string]any{"page": "storm"}), &lamps)
	if len(lamps) != stormLamps {
		t.Fatalf("%d lamps, want %d", len(lamps), stormLamps)
	}
	for i, l := range lamps {
		ext := exts[i]
		var ok bool
		switch i % 4 {
		case 0:
			ok = l.State == "idle"
		case 1:
			ok = l.State == "ringing" && strings.Contains(l.Text, "Call from Second Caller (2100)")
		case 2:
			ok = l.State == "busy" && strings.Contains(l.Text, "With Caller "+ext+fmt.Sprintf(" (55501%03d)", i)) &&
				timerRE.MatchString(l.Text)
		case 3:
			ok = l.State == "offline"
		}
		if i%5 == 0 {
			n := i/5%4 + 1
			want := fmt.Sprintf("%d new voicemail", n)
			ok = ok && strings.Contains(l.Text, want) && strings.Contains(l.Label, want)
		} else {
			ok = ok && !strings.Contains(l.Text, "voicemail")
		}
		if l.Ext != ext || !ok {
			t.Errorf("lamp %d: %+v", i, l)
		}
	}
	// The groups are headed, and the search box narrows the grid.
	var groups []string
	decode(t, b.eval(t, "storm", `() => [...document.querySelectorAll('.group')].map((g) => g.textContent)`, nil), &groups)
	if strings.Join(groups, ",") != "Floor 1,Floor 2,Floor 3,Floor 4,Floor 5" {
		t.Errorf("group headings %q", groups)
	}
	var shown struct {
		Lamps int
		Count string
	}
	decode(t, b.eval(t, "storm", `() => {
		const s = document.getElementById('search');
		s.value = 'second caller';
		s.dispatchEvent(new Event('input'));
		return { Lamps: document.querySelectorAll('.lamp:not([hidden])').length, Count: document.getElementById('search-count').textContent };
	}`, nil), &shown)
	if shown.Lamps != stormLamps/4 || shown.Count != fmt.Sprintf("%d of %d shown", stormLamps/4, stormLamps) {
		t.Errorf("search 'second caller': %+v, want the %d ringing lamps", shown, stormLamps/4)
	}
	b.eval(t, "storm", `() => { const s = document.getElementById('search'); s.value = ''; s.dispatchEvent(new Event('input')); }`, nil)

	f := slices.Clone(stats.Frames)
	slices.Sort(f)
	pct := func(p float64) float64 {
		if len(f) == 0 {
			return 0
		}
		return f[min(len(f)-1, int(p*float64(len(f))))]
	}
	over := 0
	for _, d := range f {
		if d > 50 {
			over++
		}
	}
	var loaf [3]float64
	for _, e := range stats.LoAF {
		for i := range loaf {
			loaf[i] += e[i]
		}
	}
	t.Logf("long animation frames: %d, %.0f ms in all: %.0f ms script (the console's JavaScript), %.0f ms style and layout",
		len(stats.LoAF), loaf[0], loaf[1], loaf[2])
	t.Logf("storm: %d PUBLISHes in %v, all %d lamps right after %v",
		2*stormLamps+stormLamps/4+2*stormLamps/4, published.Round(time.Millisecond), stormLamps, settled.Round(time.Millisecond))
	t.Logf("frames during the storm: %d, p50 %.1f ms, p95 %.1f ms, p99 %.1f ms, max %.1f ms, %d over 50 ms; long tasks: %d, longest %.0f ms",
		len(f), pct(0.5), pct(0.95), pct(0.99), pct(1), over, len(stats.Long), slices.Max(append([]float64{0}, stats.Long...)))

	path := filepath.Join(t.TempDir(), "console-500.png")
	if *updateScreenshot {
		path, _ = filepath.Abs(filepath.Join("testdata", "console-500.png"))
	}
	b.do(t, "screenshot", map[string]any{"page": "storm", "path": path, "fullPage": false})
	checkPageLog(t, b, "storm", false)
	b.do(t, "close", map[string]any{"page": "storm"})
}

type pub struct{ event, body string }

// storm publishes, for every extension, the documents fn returns in order, the extensions spread
// over the clients (one client per extension, so its ETags stay with it), all clients at once.
func storm(t *testing.T, ctx context.Context, cls []*sipclient.Client, exts []string, fn func(i int, ext string) []pub) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, len(cls))
	for c, cl := range cls {
		wg.Go(func() {
			for i := c; i < len(exts); i += len(cls) {
				for _, p := range fn(i, exts[i]) {
					if err := publishOnce(ctx, cl, exts[i], p.event, p.body); err != nil {
						errs <- err
						return
					}
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// publishOnce PUBLISHes a whole new publication (no SIP-If-Match): the hub composes the newest
// publication of each dialog id (RFC 3903 §4, RFC 4235 §3.7).
func publishOnce(ctx context.Context, cl *sipclient.Client, ext, event, body string) error {
	aor := servertest.AOR(ext)
	req, err := cl.NewRequest(sip.PUBLISH, aor, aor)
	if err != nil {
		return err
	}
	req.AppendHeader(sip.NewHeader("Event", event))
	req.AppendHeader(sip.NewHeader("Expires", "600"))
	ct := sip.ContentTypeHeader(map[string]string{"dialog": "application/dialog-info+xml", "presence": "application/pidf+xml",
		"message-summary": "application/simple-message-summary"}[event])
	req.AppendHeader(&ct)
	req.SetBody([]byte(body))
	res, err := cl.Do(ctx, req)
	if err != nil {
		return fmt.Errorf("PUBLISH %s %s: %w", ext, event, err)
	}
	if res.StatusCode != 200 {
		return fmt.Errorf("PUBLISH %s %s: %d %s", ext, event, res.StatusCode, res.Reason)
	}
	return nil
}

// openConsoleAt is openConsole with a viewport size.
func openConsoleAt(t *testing.T, b *browser, hub *servertest.Hub, page, exts string, width, height int) {
	t.Helper()
	tok := hub.Token("console", func(c *auth.Claims) { c.Publish = []string{} })
	b.do(t, "open", map[string]any{"page": page, "width": width, "height": height,
		"url": hub.URL + "/?token=" + url.QueryEscape(tok) + "&ext=" + url.QueryEscape(exts)})
}

func waitCount(t *testing.T, b *browser, page, selector string, n, timeoutMS int) {
	t.Helper()
	b.do(t, "waitFor", map[string]any{"page": page, "arg": []any{selector, n}, "timeout": timeoutMS,
		"fn": `([sel, n]) => document.querySelectorAll('.lamps ' + sel).length === n`})
}

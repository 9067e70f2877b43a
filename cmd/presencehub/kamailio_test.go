package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

var capturePBX = flag.Bool("pbx.capture", false, "write the PUBLISHes Kamailio sends to testdata/pbx/kamailio/ (fixtures)")

// With default hub flags and the README's Kamailio configuration, sipp
// phones registered with a real Kamailio make calls; Kamailio PUBLISHes
// dialog state (pua_dialoginfo) and registration presence (pua_usrloc) to the
// hub's --sip-addr, and a WebSocket watcher of the hub sees every lamp state
// and the lamps go back to idle after every call.
func TestKamailio_CallsThroughARealPBX_DriveTheLampsAndEndIdle(t *testing.T) {
	requirePeer(t, "PRESENCEHUB_REQUIRE_KAMAILIO", "kamailio", "sipp")
	sipPort := freeSIPPort(t)
	hubSIP := "127.0.0.1:" + strconv.Itoa(sipPort)
	h := startHub(t, "PRESENCEHUB_SIP_ADDR="+hubSIP, "PRESENCEHUB_LOG_LEVEL=debug")
	h.waitLog("plain SIP for PBXs")
	tap := startPublishTap(t, hubSIP)
	k := startKamailio(t, tap.addr())
	if *capturePBX {
		t.Cleanup(func() { writePublishFixtures(t, tap.publishes()) })
	}

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	exts := []string{"1001", "1002", "1003"}
	w := newLampWatcher(t, ctx, "ws://"+h.addr+"/ws", mint(t, "console", nil), exts...)
	phones := map[string]*phone{}
	for _, ext := range exts {
		w.waitLamp(t, ext, "offline", 5*time.Second) // nothing known yet: nobody there
		phones[ext] = newPhone(t, k.addr, ext)
		phones[ext].register(600)
		w.waitLamp(t, ext, "idle", 5*time.Second) // pua_usrloc: registered
	}

	const ring, talk = 600 * time.Millisecond, 600 * time.Millisecond
	callee := func(t *testing.T, scenario string, calls int, pause time.Duration) *sippRun {
		return startSipp(t, k.addr, scenario, phones["1001"].port, calls, pause)
	}
	caller := func(t *testing.T, from, scenario string, pause time.Duration) *sippRun {
		return startSipp(t, k.addr, scenario, freeUDPPort(t), 1, pause, "service", "1001", "caller", from)
	}
	for _, tt := range []struct {
		name string
		run  func(t *testing.T)
		want map[string][]string
	}{
		{"answered call", func(t *testing.T) {
			uas := callee(t, "uas-answer.xml", 1, ring)
			caller(t, "1002", "uac-answered.xml", talk).wait(t)
			uas.wait(t)
		}, map[string][]string{"1001": {"idle", "ringing", "busy", "idle"}, "1002": {"idle", "calling", "busy", "idle"}}},

		{"call cancelled while ringing", func(t *testing.T) {
			uas := callee(t, "uas-ring.xml", 1, 0)
			caller(t, "1002", "uac-cancel.xml", ring).wait(t)
			uas.wait(t)
		}, map[string][]string{"1001": {"idle", "ringing", "idle"}, "1002": {"idle", "calling", "idle"}}},

		{"call rejected busy", func(t *testing.T) {
			uas := callee(t, "uas-reject.xml", 1, ring)
			caller(t, "1002", "uac-rejected.xml", 0).wait(t)
			uas.wait(t)
		}, map[string][]string{"1001": {"idle", "ringing", "idle"}, "1002": {"idle", "calling", "idle"}}},

		{"two overlapping calls on one extension", func(t *testing.T) {
			uas := callee(t, "uas-answer.xml", 2, ring)
			first := caller(t, "1002", "uac-answered.xml", 4*talk)
			w.waitLamp(t, "1001", "busy", 10*time.Second)
			caller(t, "1003", "uac-answered.xml", talk).wait(t) // rings and ends while the first call goes on
			first.wait(t)
			uas.wait(t)
		}, map[string][]string{
			"1001": {"idle", "ringing", "busy", "ringing", "busy", "idle"},
			"1002": {"idle", "calling", "busy", "idle"},
			"1003": {"idle", "calling", "busy", "idle"},
		}},

		{"call still ringing when the callee unregisters", func(t *testing.T) {
			uas := callee(t, "uas-ring.xml", 1, 0)
			c := caller(t, "1002", "uac-cancel.xml", 8*ring) // time enough to unregister while it rings, under load too
			w.waitLamp(t, "1001", "ringing", 10*time.Second)
			phones["1001"].register(0) // the phone leaves while its call rings: the call still shows
			c.wait(t)
			uas.wait(t)
			w.waitLamp(t, "1001", "offline", 10*time.Second)
			phones["1001"].register(600)
		}, map[string][]string{"1001": {"idle", "ringing", "offline", "idle"}, "1002": {"idle", "calling", "idle"}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			for _, ext := range exts {
				w.reset(ext)
			}
			tt.run(t)
			for _, ext := range exts {
				w.waitLamp(t, ext, "idle", 10*time.Second)
			}
			for _, ext := range exts {
				want := tt.want[ext]
				if want == nil {
					want = []string{"idle"}
				}
				got := w.lamps(ext)
				if !slices.Equal(got, want) {
					t.Errorf("%s: lamps %v, want %v", ext, got, want)
				}
				t.Logf("%s: %s", ext, strings.Join(got, " → "))
			}
		})
	}

	// Every PUBLISH Kamailio sent was taken (Kamailio retries none): the
	// hub logs each refusal at info.
	for _, line := range strings.Split(h.stderr.String(), "\n") {
		if strings.Contains(line, `"msg":"plain sip refused"`) {
			t.Errorf("the hub refused a PUBLISH of Kamailio's: %s", line)
		}
	}
	if n := len(tap.publishes()); n < 30 {
		t.Errorf("only %d PUBLISHes passed the tap", n)
	}

	// PUBLISH → NOTIFY: from the moment Kamailio's PUBLISH passed the tap to
	// the watcher's NOTIFY for that extension and event.
	var lat []time.Duration
	for _, p := range tap.publishes() {
		ext, event := publishTarget(p.raw)
		if at, ok := w.firstNotifyAfter(ext, event, p.at); ok {
			lat = append(lat, at.Sub(p.at))
		}
	}
	if len(lat) > 0 {
		sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
		t.Logf("PUBLISH→NOTIFY over %d Kamailio PUBLISHes: min %v, median %v, p90 %v, max %v", len(lat),
			lat[0], lat[len(lat)/2], lat[len(lat)*9/10], lat[len(lat)-1])
	}
}

var requestLine = regexp.MustCompile(`^PUBLISH sip:([^@ ]+)@`)

// publishTarget returns the extension and event package of a PUBLISH.
func publishTarget(raw []byte) (ext, event string) {
	if m := requestLine.FindSubmatch(raw); m != nil {
		ext = string(m[1])
	}
	for _, line := range strings.Split(string(raw), "\r\n") {
		if name, v, ok := strings.Cut(line, ":"); ok && strings.EqualFold(strings.TrimSpace(name), "Event") {
			event = strings.TrimSpace(v)
		}
	}
	return ext, event
}

// writePublishFixtures keeps the captured PUBLISHes in testdata/pbx/kamailio,
// one file each, in the order Kamailio sent them.
func writePublishFixtures(t *testing.T, pubs []tappedPublish) {
	dir := repoFile("testdata", "pbx", "kamailio")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	old, _ := filepath.Glob(filepath.Join(dir, "*.sip"))
	for _, f := range old {
		os.Remove(f)
	}
	state := regexp.MustCompile(`<(?:state|basic)>([^<]+)<`)
	exp := regexp.MustCompile(`(?m)^Expires: *(\d+)`)
	for i, p := range pubs {
		ext, event := publishTarget(p.raw)
		what := "refresh"
		if m := state.FindSubmatch(p.raw); m != nil {
			what = strings.ToLower(string(m[1]))
		}
		if m := exp.FindSubmatch(p.raw); m != nil && string(m[1]) == "0" {
			what += "-expires0"
		}
		name := fmt.Sprintf("%02d-%s-%s-%s.sip", i+1, event, ext, what)
		if err := os.WriteFile(filepath.Join(dir, name), bytes.ReplaceAll(p.raw, []byte("\r\n"), []byte("\r\n")), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("wrote %d PUBLISHes to %s", len(pubs), dir)
}

// The README's Kamailio configuration is the tested one, byte for byte: a
// change to one without the other fails here.
func TestREADME_KamailioConfig_IsTheTestedFile(t *testing.T) {
	cfg, err := os.ReadFile(repoFile("testdata", "pbx", "kamailio.cfg"))
	if err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile(repoFile("README.md"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(readme, append(append([]byte("```cfg\n"), cfg...), "```\n"...)) {
		t.Fatal("README.md does not hold testdata/pbx/kamailio.cfg verbatim in a ```cfg block")
	}
}

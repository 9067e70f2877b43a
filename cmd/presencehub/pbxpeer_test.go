package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/presencehub/presencehub/compositor/dialoginfo"
	"github.com/presencehub/presencehub/compositor/pidf"
	"github.com/presencehub/presencehub/internal/sipclient"
)

// This file holds the real peers of the PBX tests: Kamailio (started with
// testdata/pbx/kamailio.cfg, the README's configuration), sipp phones, and
// a WebSocket watcher that turns the hub's NOTIFYs into lamps.

// requirePeer skips when a program is missing, unless the REQUIRE variable
// says the peer must be there (CI).
func requirePeer(t *testing.T, env string, programs ...string) {
	t.Helper()
	for _, p := range programs {
		if _, err := exec.LookPath(p); err != nil {
			if os.Getenv(env) != "" {
				t.Fatalf("%s is set but %s is not installed: %v", env, p, err)
			}
			t.Skipf("%s not installed (apt-get install kamailio kamailio-presence-modules sip-tester baresip; %s=1 makes this a failure)", p, env)
		}
	}
}

// freeSIPPort returns a port free on 127.0.0.1 for both UDP and TCP.
func freeSIPPort(t *testing.T) int {
	t.Helper()
	for range 50 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := ln.Addr().(*net.TCPAddr).Port
		pc, err := net.ListenPacket("udp", ln.Addr().String())
		ln.Close()
		if err == nil {
			pc.Close()
			return port
		}
	}
	t.Fatal("no port free for both UDP and TCP")
	return 0
}

// freeUDPPort returns a UDP port free on 127.0.0.1 (for a sipp phone).
func freeUDPPort(t *testing.T) int {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	return pc.LocalAddr().(*net.UDPAddr).Port
}

// repoFile is the absolute path of a file of the repository (child
// processes run in their own directories).
func repoFile(parts ...string) string {
	p, err := filepath.Abs(filepath.Join(append([]string{"..", ".."}, parts...)...))
	if err != nil {
		panic(err)
	}
	return p
}

// kamailioConfig is testdata/pbx/kamailio.cfg with its four values set: the
// file is used as the README shows it, only the #!substdef lines change.
func kamailioConfig(t *testing.T, domain, hubSIP, listen, puaDB string) []byte {
	t.Helper()
	cfg, err := os.ReadFile(repoFile("testdata", "pbx", "kamailio.cfg"))
	if err != nil {
		t.Fatal(err)
	}
	for id, v := range map[string]string{"HUB_DOMAIN": domain, "HUB_SIP": hubSIP, "PBX_LISTEN": listen, "PUA_DB": puaDB} {
		re := regexp.MustCompile(`(?m)^#!substdef "!` + id + `![^!]*!g"$`)
		if !re.Match(cfg) {
			t.Fatalf("kamailio.cfg has no #!substdef line for %s", id)
		}
		cfg = re.ReplaceAll(cfg, []byte(`#!substdef "!`+id+`!`+v+`!g"`))
	}
	return cfg
}

// kamailio is a running Kamailio process.
type kamailio struct {
	addr string // udp host:port the phones use
	log  *logBuffer
}

// startKamailio runs Kamailio in the foreground on a random 127.0.0.1 port,
// publishing to hubSIP, and waits until it answers SIP.
func startKamailio(t *testing.T, hubSIP string) *kamailio {
	t.Helper()
	dir := t.TempDir()
	puaDB := filepath.Join(dir, "pua")
	if err := os.Mkdir(puaDB, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"version", "pua"} {
		data, err := os.ReadFile(filepath.Join("/usr/share/kamailio/dbtext/kamailio", f))
		if err != nil {
			t.Fatalf("kamailio's db_text tables: %v", err)
		}
		if err := os.WriteFile(filepath.Join(puaDB, f), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var k *kamailio
	for attempt := 0; ; attempt++ { // the port is picked before Kamailio binds it
		port := freeUDPPort(t)
		addr := "127.0.0.1:" + strconv.Itoa(port)
		cfgPath := filepath.Join(dir, "kamailio.cfg")
		if err := os.WriteFile(cfgPath, kamailioConfig(t, testDomain, hubSIP, "udp:"+addr, puaDB), 0o644); err != nil {
			t.Fatal(err)
		}
		k = &kamailio{addr: addr, log: &logBuffer{}}
		cmd := exec.Command("kamailio", "-DD", "-E", "-f", cfgPath, "-Y", dir, "-m", "32", "-M", "8")
		cmd.Stdout, cmd.Stderr = k.log, k.log
		// Kamailio forks its workers: they share its stdout/stderr, so
		// killing the main process alone leaves the pipes open and Wait
		// waiting. Its own process group is signalled whole, and WaitDelay
		// bounds the wait for the pipes whatever happens.
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		cmd.WaitDelay = 5 * time.Second
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan struct{})
		go func() { _ = cmd.Wait(); close(exited) }()
		t.Cleanup(func() {
			pgid := -cmd.Process.Pid
			_ = syscall.Kill(pgid, syscall.SIGTERM)
			select {
			case <-exited:
			case <-time.After(5 * time.Second):
				_ = syscall.Kill(pgid, syscall.SIGKILL)
				<-exited
			}
			if t.Failed() {
				t.Logf("kamailio log:\n%s", k.log.String())
			}
		})
		if err := k.ready(exited); err == nil {
			return k
		} else if attempt == 2 {
			t.Fatalf("kamailio did not start: %v\n%s", err, k.log.String())
		}
	}
}

// ready waits until Kamailio answers an OPTIONS (any answer will do).
func (k *kamailio) ready(exited <-chan struct{}) error {
	conn, err := net.Dial("udp", k.addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	buf := make([]byte, 4096)
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); {
		select {
		case <-exited:
			return fmt.Errorf("exited")
		default:
		}
		msg := "OPTIONS sip:" + k.addr + " SIP/2.0\r\nVia: SIP/2.0/UDP " + conn.LocalAddr().String() + ";branch=" + sip.GenerateBranch() +
			"\r\nFrom: <sip:probe@" + testDomain + ">;tag=p\r\nTo: <sip:" + k.addr + ">\r\nCall-ID: probe" + sip.GenerateBranch() +
			"\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
		if _, err := conn.Write([]byte(msg)); err != nil {
			return err
		}
		_ = conn.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		if n, err := conn.Read(buf); err == nil && bytes.HasPrefix(buf[:n], []byte("SIP/2.0 ")) {
			return nil
		}
	}
	return fmt.Errorf("no answer to OPTIONS within 15s")
}

// phone is a SIP extension registered with Kamailio; sipp plays its calls
// on its own UDP port.
type phone struct {
	t      *testing.T
	ext    string
	port   int // the Contact port: where sipp answers for this phone
	pbx    string
	callID string
	cseq   int
}

func newPhone(t *testing.T, pbx, ext string) *phone {
	return &phone{t: t, ext: ext, port: freeUDPPort(t), pbx: pbx, callID: "reg-" + ext + "-" + sip.GenerateBranch()[7:]}
}

// register binds (expires > 0) or removes (0) the phone's contact at Kamailio.
func (p *phone) register(expires int) {
	p.t.Helper()
	conn, err := net.Dial("udp", p.pbx)
	if err != nil {
		p.t.Fatal(err)
	}
	defer conn.Close()
	p.cseq++
	aor := "sip:" + p.ext + "@" + testDomain
	msg := "REGISTER sip:" + testDomain + " SIP/2.0\r\nVia: SIP/2.0/UDP " + conn.LocalAddr().String() + ";branch=" + sip.GenerateBranch() + ";rport" +
		"\r\nFrom: <" + aor + ">;tag=r" + p.ext + "\r\nTo: <" + aor + ">\r\nCall-ID: " + p.callID + "\r\nCSeq: " + strconv.Itoa(p.cseq) + " REGISTER" +
		"\r\nContact: <sip:" + p.ext + "@127.0.0.1:" + strconv.Itoa(p.port) + ">\r\nExpires: " + strconv.Itoa(expires) +
		"\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
	if _, err := conn.Write([]byte(msg)); err != nil {
		p.t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 4096)
	n, err := conn.Read(buf)
	if err != nil {
		p.t.Fatalf("REGISTER %s: no answer: %v", p.ext, err)
	}
	if !bytes.HasPrefix(buf[:n], []byte("SIP/2.0 200")) {
		p.t.Fatalf("REGISTER %s: %s", p.ext, buf[:n])
	}
}

// sippRun is one sipp process playing a scenario of testdata/pbx/sipp.
type sippRun struct {
	name   string
	cmd    *exec.Cmd
	out    *logBuffer
	exited chan struct{}
	err    error
}

// startSipp runs scenario (a file of testdata/pbx/sipp) against Kamailio
// on port, for calls calls; pause is the scenario's <pause/> (ring or talk time).
func startSipp(t *testing.T, pbx, scenario string, port, calls int, pause time.Duration, keys ...string) *sippRun {
	t.Helper()
	dir := t.TempDir()
	args := []string{pbx, "-sf", repoFile("testdata", "pbx", "sipp", scenario), "-i", "127.0.0.1", "-p", strconv.Itoa(port),
		"-m", strconv.Itoa(calls), "-l", strconv.Itoa(calls), "-d", strconv.Itoa(int(pause / time.Millisecond)),
		"-nostdin", "-timeout", "30s", "-timeout_error", "-trace_err", "-error_file", filepath.Join(dir, "errors.log"),
		"-key", "domain", testDomain}
	for i := 0; i+1 < len(keys); i += 2 {
		if keys[i] == "service" {
			args = append(args, "-s", keys[i+1])
			continue
		}
		args = append(args, "-key", keys[i], keys[i+1])
	}
	r := &sippRun{name: scenario, out: &logBuffer{}, exited: make(chan struct{})}
	r.cmd = exec.Command("sipp", args...)
	r.cmd.Dir = dir
	r.cmd.Stdout, r.cmd.Stderr = r.out, r.out
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { r.err = r.cmd.Wait(); close(r.exited) }()
	t.Cleanup(func() {
		select {
		case <-r.exited:
		default:
			_ = r.cmd.Process.Kill()
			<-r.exited
		}
		if t.Failed() {
			errs, _ := os.ReadFile(filepath.Join(dir, "errors.log"))
			t.Logf("sipp %s: %v\n%s\n%s", scenario, r.err, errs, lastLines(r.out.String(), 30))
		}
	})
	return r
}

// wait waits for sipp to end and fails unless every call succeeded.
func (r *sippRun) wait(t *testing.T) {
	t.Helper()
	select {
	case <-r.exited:
	case <-time.After(40 * time.Second):
		t.Fatalf("sipp %s still running after 40s", r.name)
	}
	if r.err != nil {
		t.Fatalf("sipp %s: %v", r.name, r.err)
	}
}

// lampOf decides a lamp from a dialog-info and a PIDF document with the
// console's rules (web/static/blf.js lampOf), so the test asserts what an
// attendant sees.
func lampOf(d *dialoginfo.Document, p *pidf.Document) string {
	if d == nil {
		return "unknown"
	}
	early := func(s string) bool { return s == "trying" || s == "proceeding" || s == "early" }
	var confirmed, calling bool
	for _, dl := range d.Dialogs {
		switch {
		case dl.Terminated():
		case early(dl.State) && dl.Direction != dialoginfo.Initiator:
			return "ringing"
		case dl.State == dialoginfo.Confirmed:
			confirmed = true
		case early(dl.State):
			calling = true
		}
	}
	switch {
	case confirmed:
		return "busy"
	case calling:
		return "calling"
	case presenceClosed(p):
		return "offline"
	}
	return "idle"
}

// presenceClosed: some source says nobody is there (the hub's own tuple
// "none" for a resource without presence publications counts, as it does in
// the console).
func presenceClosed(p *pidf.Document) bool {
	if p == nil {
		return false
	}
	closed := false
	for _, tu := range p.Tuples {
		switch tu.Basic {
		case pidf.Open:
			return false
		case pidf.Closed:
			closed = true
		}
	}
	return closed // tuples without basic state nothing
}

// lampEvent is one lamp change seen by the watcher.
type lampEvent struct {
	lamp string
	at   time.Time
}

// lampWatcher subscribes to dialog and presence of extensions over the
// hub's WebSocket and records every lamp change per extension.
type lampWatcher struct {
	t  *testing.T
	c  *sipclient.Client
	mu sync.Mutex
	// per extension
	dialog   map[string]*dialoginfo.Document
	presence map[string]*pidf.Document
	seq      map[string][]lampEvent
	tuples   map[string][]string // per presence NOTIFY: "id=basic ..." of its tuples
	notifies []notifySeen
	changed  chan struct{}
}

type notifySeen struct {
	ext, event string
	at         time.Time
}

func newLampWatcher(t *testing.T, ctx context.Context, wsURL, token string, exts ...string) *lampWatcher {
	t.Helper()
	w := &lampWatcher{t: t, dialog: map[string]*dialoginfo.Document{}, presence: map[string]*pidf.Document{},
		seq: map[string][]lampEvent{}, tuples: map[string][]string{}, changed: make(chan struct{}, 1)}
	c, err := sipclient.Dial(ctx, wsURL, sipclient.Options{Token: token, OnRequest: func(req *sip.Request) int {
		w.notify(req)
		return 200
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	w.c = c
	for _, ext := range exts {
		for _, ev := range []string{"presence", "dialog"} {
			req, err := c.NewRequest(sip.SUBSCRIBE, aor("console"), aor(ext))
			if err != nil {
				t.Fatal(err)
			}
			req.AppendHeader(sip.NewHeader("Event", ev))
			req.AppendHeader(sip.NewHeader("Expires", "600"))
			res, err := c.Do(ctx, req)
			if err != nil || res.StatusCode != 200 {
				t.Fatalf("SUBSCRIBE %s %s: %v %v", ext, ev, res, err)
			}
		}
	}
	for _, ext := range exts {
		w.waitLamp(t, ext, "", 10*time.Second)
	}
	return w
}

func (w *lampWatcher) notify(req *sip.Request) {
	if req.Method != sip.NOTIFY {
		return
	}
	ext := req.Recipient.User
	if from := req.From(); from != nil {
		ext = from.Address.User
	}
	ev := ""
	if h := req.GetHeader("Event"); h != nil {
		ev, _, _ = strings.Cut(h.Value(), ";")
	}
	now := time.Now()
	w.mu.Lock()
	defer w.mu.Unlock()
	w.notifies = append(w.notifies, notifySeen{ext: ext, event: ev, at: now})
	lim := dialoginfo.Limits{MaxBytes: 1 << 20, MaxDepth: 32, MaxElements: 10000}
	switch ev {
	case "dialog":
		if d, err := dialoginfo.Parse(req.Body(), lim); err == nil {
			w.dialog[ext] = d
		} else {
			w.t.Errorf("NOTIFY dialog for %s: %v\n%s", ext, err, req.Body())
		}
	case "presence":
		if p, err := pidf.Parse(req.Body(), lim); err == nil {
			w.presence[ext] = p
			var ts []string
			for _, tu := range p.Tuples {
				ts = append(ts, tu.ID+"="+tu.Basic)
			}
			w.tuples[ext] = append(w.tuples[ext], strings.Join(ts, " "))
			select {
			case w.changed <- struct{}{}:
			default:
			}
		} else {
			w.t.Errorf("NOTIFY presence for %s: %v\n%s", ext, err, req.Body())
		}
	}
	if w.presence[ext] == nil || w.dialog[ext] == nil {
		return // both subscriptions are up before a lamp shows, as in the console
	}
	lamp := lampOf(w.dialog[ext], w.presence[ext])
	if s := w.seq[ext]; len(s) == 0 || s[len(s)-1].lamp != lamp {
		w.seq[ext] = append(s, lampEvent{lamp: lamp, at: now})
		select {
		case w.changed <- struct{}{}:
		default:
		}
	}
}

// lamps returns the lamp sequence of ext.
func (w *lampWatcher) lamps(ext string) []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []string
	for _, e := range w.seq[ext] {
		out = append(out, e.lamp)
	}
	return out
}

// waitLamp waits until ext's current lamp is lamp ("" = any lamp at all).
func (w *lampWatcher) waitLamp(t *testing.T, ext, lamp string, within time.Duration) {
	t.Helper()
	deadline := time.After(within)
	for {
		s := w.lamps(ext)
		if len(s) > 0 && (lamp == "" || s[len(s)-1] == lamp) {
			return
		}
		select {
		case <-w.changed:
		case <-time.After(20 * time.Millisecond):
		case <-deadline:
			t.Fatalf("%s: lamp %q not reached within %v; lamps so far %v", ext, lamp, within, s)
		}
	}
}

// presenceTuples returns the tuples of every presence NOTIFY for ext.
func (w *lampWatcher) presenceTuples(ext string) []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.tuples[ext]...)
}

// waitTuples waits until the last presence NOTIFY for ext has these tuples.
func (w *lampWatcher) waitTuples(t *testing.T, ext, tuples string, within time.Duration) {
	t.Helper()
	deadline := time.After(within)
	for {
		s := w.presenceTuples(ext)
		if len(s) > 0 && s[len(s)-1] == tuples {
			return
		}
		select {
		case <-w.changed:
		case <-time.After(20 * time.Millisecond):
		case <-deadline:
			t.Fatalf("%s: presence %q not reached within %v; presence so far %q", ext, tuples, within, s)
		}
	}
}

// reset starts a new sequence for ext from its current lamp.
func (w *lampWatcher) reset(ext string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if s := w.seq[ext]; len(s) > 0 {
		w.seq[ext] = s[len(s)-1:]
	}
}

// firstNotifyAfter returns when the first NOTIFY of event for ext arrived at
// or after t0.
func (w *lampWatcher) firstNotifyAfter(ext, event string, t0 time.Time) (time.Time, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, n := range w.notifies {
		if n.ext == ext && n.event == event && !n.at.Before(t0) {
			return n.at, true
		}
	}
	return time.Time{}, false
}

// publishTap is a UDP relay between Kamailio and the hub's --sip-addr: it
// forwards every request to the hub unchanged, relays the hub's answers back
// and records each PUBLISH and when it passed.
type publishTap struct {
	pc   net.PacketConn
	mu   sync.Mutex
	seen []tappedPublish
	done chan struct{}
}

type tappedPublish struct {
	at  time.Time
	raw []byte
}

func startPublishTap(t *testing.T, hubSIP string) *publishTap {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hub, err := net.ResolveUDPAddr("udp", hubSIP)
	if err != nil {
		t.Fatal(err)
	}
	out, err := net.DialUDP("udp", nil, hub)
	if err != nil {
		t.Fatal(err)
	}
	tap := &publishTap{pc: pc, done: make(chan struct{})}
	var from sync.Map // the last sender: where answers that come back to the tap go
	answersDone := make(chan struct{})
	go func() {
		defer close(answersDone)
		buf := make([]byte, 65535)
		for {
			n, err := out.Read(buf)
			if err != nil {
				return
			}
			if a, ok := from.Load("peer"); ok {
				_, _ = pc.WriteTo(buf[:n], a.(net.Addr))
			}
		}
	}()
	go func() {
		defer close(tap.done)
		defer func() { out.Close(); <-answersDone }()
		buf := make([]byte, 65535)
		for {
			n, src, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			from.Store("peer", src)
			msg := append([]byte(nil), buf[:n]...)
			if bytes.HasPrefix(msg, []byte("PUBLISH ")) {
				tap.mu.Lock()
				tap.seen = append(tap.seen, tappedPublish{at: time.Now(), raw: msg})
				tap.mu.Unlock()
			}
			_, _ = out.Write(msg)
		}
	}()
	t.Cleanup(func() { pc.Close(); <-tap.done })
	return tap
}

func (tap *publishTap) addr() string { return tap.pc.LocalAddr().String() }

func (tap *publishTap) publishes() []tappedPublish {
	tap.mu.Lock()
	defer tap.mu.Unlock()
	return append([]tappedPublish(nil), tap.seen...)
}

func lastLines(s string, n int) string {
	lines := strings.Split(s, "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

package web_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// browserDir holds the Node project of the browser tests (playwright-core, esbuild, jssip,
// sip.js; `npm ci` there) and driver.mjs, the bridge that drives Chromium for these tests.
const browserDir = "../testdata/browser"

// browser is headless Chromium behind testdata/browser/driver.mjs: one JSON command per line
// in, one JSON answer per line out.
type browser struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	lines  chan []byte
	stderr *lockedBuffer

	mu     sync.Mutex
	nextID int
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// needBrowser skips the test when Chromium, Node or the browser test's node_modules are missing,
// unless PRESENCEHUB_REQUIRE_BROWSER is set (CI), where that is a failure.
func needBrowser(t *testing.T) (node, chromium string) {
	t.Helper()
	missing := func(what string) {
		if os.Getenv("PRESENCEHUB_REQUIRE_BROWSER") != "" {
			t.Fatalf("browser test cannot run: %s (PRESENCEHUB_REQUIRE_BROWSER is set)", what)
		}
		t.Skipf("browser test skipped: %s", what)
	}
	chromium = os.Getenv("CHROMIUM")
	if chromium == "" {
		chromium = "/usr/bin/chromium"
	}
	if _, err := os.Stat(chromium); err != nil {
		missing("no Chromium at " + chromium + " (apt-get install chromium, or set CHROMIUM)")
	}
	node, err := exec.LookPath("node")
	if err != nil {
		missing("node is not installed")
	}
	for _, m := range []string{"playwright-core", "esbuild", "jssip", "sip.js"} {
		if _, err := os.Stat(filepath.Join(browserDir, "node_modules", m, "package.json")); err != nil {
			missing("no node_modules/" + m + " (run `npm ci` in testdata/browser)")
		}
	}
	return node, chromium
}

// startBrowser launches the driver and Chromium; both end with the test.
func startBrowser(t *testing.T) *browser {
	t.Helper()
	node, chromium := needBrowser(t)
	cmd := exec.Command(node, "driver.mjs")
	cmd.Dir = browserDir
	cmd.Env = append(os.Environ(), "CHROMIUM="+chromium)
	b := &browser{cmd: cmd, lines: make(chan []byte, 16), stderr: &lockedBuffer{}}
	cmd.Stderr = b.stderr
	var err error
	if b.stdin, err = cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start driver: %v", err)
	}
	go func() { // ends when the driver closes stdout (it exits)
		defer close(b.lines)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 1<<20), 16<<20)
		for sc.Scan() {
			b.lines <- append([]byte(nil), sc.Bytes()...)
		}
	}()
	t.Cleanup(func() {
		_, _ = io.WriteString(b.stdin, `{"cmd":"quit"}`+"\n")
		_ = b.stdin.Close()
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		for range b.lines { // drain so the reader goroutine ends
		}
		if t.Failed() {
			t.Logf("driver stderr:\n%s", b.stderr.String())
		}
	})
	b.answer(t, 0, "launch", 90*time.Second)
	return b
}

// do runs one driver command and returns its result; a failed command fails the test.
func (b *browser) do(t *testing.T, cmd string, args map[string]any) json.RawMessage {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	b.nextID++
	if args == nil {
		args = map[string]any{}
	}
	args["id"], args["cmd"] = b.nextID, cmd
	line, err := json.Marshal(args)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.stdin.Write(append(line, '\n')); err != nil {
		t.Fatalf("driver %s: %v\n%s", cmd, err, b.stderr.String())
	}
	start := time.Now()
	res := b.answer(t, b.nextID, cmd, 90*time.Second)
	if d := time.Since(start); d > 2*time.Second {
		t.Logf("driver %s took %v", cmd, d.Round(time.Millisecond))
	}
	return res
}

func (b *browser) answer(t *testing.T, id int, what string, timeout time.Duration) json.RawMessage {
	t.Helper()
	select {
	case line, ok := <-b.lines:
		if !ok {
			t.Fatalf("driver exited during %s:\n%s", what, b.stderr.String())
		}
		var ans struct {
			ID     int             `json:"id"`
			OK     bool            `json:"ok"`
			Result json.RawMessage `json:"result"`
			Error  string          `json:"error"`
		}
		if err := json.Unmarshal(line, &ans); err != nil {
			t.Fatalf("driver %s: bad answer %q: %v", what, line, err)
		}
		if ans.ID != id {
			t.Fatalf("driver %s: answer %d, want %d", what, ans.ID, id)
		}
		if !ans.OK {
			t.Fatalf("driver %s: %s", what, ans.Error)
		}
		return ans.Result
	case <-time.After(timeout):
		t.Fatalf("driver %s: no answer within %v\n%s", what, timeout, b.stderr.String())
	}
	return nil
}

// lamp is one lamp as the page shows it.
type lamp struct {
	Ext   string `json:"ext"`
	State string `json:"state"`
	Label string `json:"label"`
	Text  string `json:"text"`
}

// waitLamp waits until the lamp of ext on page shows state.
func (b *browser) waitLamp(t *testing.T, page, ext, state string) lamp {
	t.Helper()
	var l lamp
	decode(t, b.do(t, "waitLamp", map[string]any{"page": page, "ext": ext, "state": state, "timeout": 15000}), &l)
	return l
}

func (b *browser) eval(t *testing.T, page, fn string, arg any) json.RawMessage {
	t.Helper()
	return b.do(t, "eval", map[string]any{"page": page, "fn": fn, "arg": arg})
}

func decode(t *testing.T, raw json.RawMessage, v any) {
	t.Helper()
	if err := json.Unmarshal(raw, v); err != nil {
		t.Fatalf("decode %s: %v", raw, err)
	}
}

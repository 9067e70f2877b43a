package interop

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Exit codes of the scripts (lib/common.mjs).
const (
	ExitOK      = 0 // ended as asked (unregistered, unsubscribed, quit)
	ExitError   = 1 // unexpected exception in the script or the library
	ExitUsage   = 2 // bad arguments
	ExitRefused = 3 // the hub refused (registration/subscription failed, upgrade refused)
	ExitTimeout = 4 // the script's own deadline passed
)

// DefaultTimeout bounds the life of one client process.
const DefaultTimeout = 120 * time.Second

// Event is one JSON line a script printed. Fields not present in the line keep their zero
// value; Has tells whether a field was there.
type Event struct {
	Ev string `json:"ev"`

	// Library events.
	State      string `json:"state"`      // notify: first dialog's state, "idle", or PIDF basic; ws: open/closed/error; …State: the library's state name
	SubState   string `json:"subState"`   // Subscription-State value: active, pending, terminated
	SubExpires int    `json:"subExpires"` // Subscription-State expires parameter
	Final      bool   `json:"final"`      // notify: Subscription-State terminated
	Version    int    `json:"version"`    // dialog-info version
	Dialogs    int    `json:"dialogs"`    // dialog-info: number of <dialog> elements
	Entity     string `json:"entity"`     // body's entity
	Kind       string `json:"kind"`       // publishResponse/subscribeResponse: initial, refresh, modify, remove, unsubscribe
	Answer     int    `json:"answer"`     // notifyAnswered: the library's status code for the NOTIFY
	N          int    `json:"n"`          // registered/refreshed: number of 2xx to REGISTER so far
	Code       int    `json:"code"`       // exit: process exit code; ws closed: close code; terminated: JsSIP termination code
	CodeName   string `json:"codeName"`   // terminated (JsSIP)
	Cause      string `json:"cause"`      // JsSIP failure cause
	Asked      bool   `json:"asked"`      // terminated: after our unsubscribe
	HTTPStatus int    `json:"httpStatus"` // ws error: status of a refused upgrade
	Cmd        string `json:"cmd"`        // cmd: the command being handled
	Message    string `json:"message"`    // error

	// Wire events ("sip", and the same names in publishResponse/subscribeResponse).
	Dir            string `json:"dir"` // "in" (hub to client) or "out"
	Conn           int    `json:"conn"`
	Method         string `json:"method"`
	RURI           string `json:"ruri"`
	Status         int    `json:"status"`
	Reason         string `json:"reason"`
	CSeq           int    `json:"cseq"`
	CSeqMethod     string `json:"cseqMethod"`
	CallID         string `json:"callId"`
	Event          string `json:"event"`
	Expires        int    `json:"expires"`
	ETag           string `json:"etag"`
	IfMatch        string `json:"ifMatch"`
	Contact        string `json:"contact"`
	ContactExpires int    `json:"contactExpires"`
	ContentType    string `json:"contentType"`
	WWWAuth        string `json:"wwwAuthenticate"`

	// Line is the JSON line as printed.
	Line string `json:"-"`
	// At is when the harness read the line.
	At time.Time `json:"-"`

	fields map[string]json.RawMessage
}

// Has reports whether the line carried field name (e.g. "expires", which may be 0).
func (e Event) Has(name string) bool {
	_, ok := e.fields[name]
	return ok
}

// Client is one running Node script. Its methods must be called from the test's goroutine.
type Client struct {
	t      testing.TB
	name   string
	cmd    *exec.Cmd
	cancel context.CancelFunc
	stdin  io.WriteCloser
	events chan Event    // closed when stdout ends and the process has been waited for
	done   chan struct{} // closed with events
	stderr *tailBuffer

	exitCode int   // valid after done
	waitErr  error // valid after done

	seen    []Event   // events the test has consumed, in order
	started time.Time // when the process was started
	live    bool      // events has not been closed yet as seen by the test
}

// Options tune Start.
type Options struct {
	// Name labels the client in failure logs; default: the script name.
	Name string
	// Timeout bounds the process's life (exec.CommandContext); default DefaultTimeout.
	// The script is also told (INTEROP_TIMEOUT) to give up a little earlier by itself.
	Timeout time.Duration
	// Env adds KEY=VALUE pairs to the script's environment.
	Env []string
}

// Start runs script (a file in this directory) with args. It skips t when Node or the npm
// packages are missing (see Require). The process is ended when the test ends.
func Start(t testing.TB, script string, args ...string) *Client {
	t.Helper()
	return StartWith(t, Options{}, script, args...)
}

// StartWith is Start with options.
func StartWith(t testing.TB, opts Options, script string, args ...string) *Client {
	t.Helper()
	Require(t)
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("interop: %v", err)
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.Name == "" {
		opts.Name = strings.TrimSuffix(script, ".mjs")
	}
	ctx, cancel := context.WithTimeout(context.Background(), opts.Timeout)
	cmd := exec.CommandContext(ctx, node, append([]string{script}, args...)...)
	scriptTimeout := opts.Timeout - 2*time.Second
	if scriptTimeout < time.Second {
		scriptTimeout = time.Second
	}
	cmd.Env = append(os.Environ(), "INTEROP_TIMEOUT="+strconv.Itoa(int(scriptTimeout/time.Second)))
	cmd.Env = append(cmd.Env, opts.Env...)
	cmd.WaitDelay = 2 * time.Second // pipes held open by a stray grandchild can't hang Wait

	c := &Client{
		t:      t,
		name:   opts.Name,
		cmd:    cmd,
		cancel: cancel,
		events: make(chan Event, 1024),
		done:   make(chan struct{}),
		stderr: &tailBuffer{max: 512 << 10},
		live:   true,
	}
	cmd.Stderr = c.stderr
	if c.stdin, err = cmd.StdinPipe(); err != nil {
		cancel()
		t.Fatalf("interop %s: %v", c.name, err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		cancel()
		t.Fatalf("interop %s: %v", c.name, err)
	}
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("interop %s: start node %s: %v", c.name, script, err)
	}
	c.started = time.Now()
	go c.read(stdout)
	t.Cleanup(c.stop)
	return c
}

// read owns stdout: it turns lines into events until EOF, then waits for the process.
func (c *Client) read(stdout io.Reader) {
	defer close(c.done)
	defer close(c.events)
	sc := bufio.NewScanner(stdout)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		c.events <- parseEvent(sc.Text())
	}
	c.waitErr = c.cmd.Wait()
	c.exitCode = -1
	if c.cmd.ProcessState != nil {
		c.exitCode = c.cmd.ProcessState.ExitCode()
	}
}

func parseEvent(line string) Event {
	e := Event{Line: line, At: time.Now()}
	if err := json.Unmarshal([]byte(line), &e); err != nil || e.Ev == "" {
		return Event{Ev: "stdout", Message: line, Line: line, At: e.At}
	}
	_ = json.Unmarshal([]byte(line), &e.fields)
	return e
}

// stop ends the process: stdin EOF asks the script to quit; the context kills it if it doesn't.
// Unread events are drained so the reader can finish. On failure, everything is logged.
func (c *Client) stop() {
	_ = c.stdin.Close()
	grace := time.NewTimer(3 * time.Second)
	defer grace.Stop()
	for c.live {
		select {
		case e, ok := <-c.events:
			if !ok {
				c.live = false
				break
			}
			c.seen = append(c.seen, e)
		case <-grace.C:
			c.cancel()
		}
	}
	<-c.done
	c.cancel()
	if c.t.Failed() || os.Getenv("INTEROP_VERBOSE") != "" {
		c.dump()
	}
}

func (c *Client) dump() {
	var b strings.Builder
	fmt.Fprintf(&b, "---- %s: events (exit code %d, wait: %v) ----\n", c.name, c.exitCode, c.waitErr)
	for _, e := range c.seen {
		fmt.Fprintf(&b, "%+7.3fs %s\n", e.At.Sub(c.started).Seconds(), e.Line)
	}
	fmt.Fprintf(&b, "---- %s: stderr (SIP wire trace) ----\n%s", c.name, c.stderr.String())
	c.t.Log(b.String())
}

// Send writes one command line ({"cmd": name, ...fields}) to the script's stdin.
func (c *Client) Send(name string, fields map[string]any) {
	c.t.Helper()
	m := map[string]any{"cmd": name}
	for k, v := range fields {
		m[k] = v
	}
	b, err := json.Marshal(m)
	if err != nil {
		c.t.Fatalf("interop %s: encode command: %v", c.name, err)
	}
	if _, err := c.stdin.Write(append(b, '\n')); err != nil {
		c.t.Fatalf("interop %s: send %s: %v", c.name, b, err)
	}
}

// Expect consumes events until one satisfies match and returns it. It fails the test when the
// timeout passes or the script ends first; what names the awaited event in that message.
func (c *Client) Expect(what string, timeout time.Duration, match func(Event) bool) Event {
	c.t.Helper()
	e, err := c.next(timeout, match)
	if err != nil {
		c.t.Fatalf("interop %s: waiting for %s: %v", c.name, what, err)
	}
	return e
}

// ExpectEv is Expect for the first event named ev.
func (c *Client) ExpectEv(ev string, timeout time.Duration) Event {
	c.t.Helper()
	return c.Expect(strconv.Quote(ev), timeout, func(e Event) bool { return e.Ev == ev })
}

var errExited = errors.New("script ended")

func (c *Client) next(timeout time.Duration, match func(Event) bool) (Event, error) {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		if !c.live {
			return Event{}, fmt.Errorf("%w (exit code %d)", errExited, c.exitCode)
		}
		select {
		case e, ok := <-c.events:
			if !ok {
				c.live = false
				<-c.done
				continue
			}
			c.seen = append(c.seen, e)
			if match(e) {
				return e, nil
			}
		case <-deadline.C:
			return Event{}, fmt.Errorf("not seen within %v", timeout)
		}
	}
}

// Quiet consumes events for d and returns those that match; use it to show that something
// (a second NOTIFY, a retried REGISTER) does not happen.
func (c *Client) Quiet(d time.Duration, match func(Event) bool) []Event {
	c.t.Helper()
	mark := len(c.seen)
	_, _ = c.next(d, func(Event) bool { return false })
	return filter(c.seen[mark:], match)
}

// Seen returns the consumed events that match, in order (match nil: all of them).
func (c *Client) Seen(match func(Event) bool) []Event {
	return filter(c.seen, match)
}

// Mark is a position in the consumed events, for Since.
func (c *Client) Mark() int { return len(c.seen) }

// Since returns the events consumed after mark that match (match nil: all of them).
func (c *Client) Since(mark int, match func(Event) bool) []Event {
	return filter(c.seen[mark:], match)
}

func filter(es []Event, match func(Event) bool) []Event {
	var out []Event
	for _, e := range es {
		if match == nil || match(e) {
			out = append(out, e)
		}
	}
	return out
}

// Wait consumes the remaining events until the script ends and returns its exit code; it fails
// the test if the script is still running after timeout.
func (c *Client) Wait(timeout time.Duration) int {
	c.t.Helper()
	if _, err := c.next(timeout, func(Event) bool { return false }); !errors.Is(err, errExited) {
		c.t.Fatalf("interop %s: waiting for the script to end: %v", c.name, err)
	}
	return c.exitCode
}

// Stderr is the tail of what the script wrote to stderr (the SIP wire trace).
func (c *Client) Stderr() string { return c.stderr.String() }

// Require skips t when Node or the npm packages are missing. With PRESENCEHUB_REQUIRE_NODE=1
// (what CI sets) it fails t instead. The scripts and node_modules are in this package's
// directory, which is where `go test` runs the test binary.
func Require(t testing.TB) {
	t.Helper()
	miss := func(msg string) {
		t.Helper()
		if os.Getenv("PRESENCEHUB_REQUIRE_NODE") != "" {
			t.Fatal("interop: required (PRESENCEHUB_REQUIRE_NODE is set) but " + msg)
		}
		t.Skip("interop: skipped: " + msg)
	}
	if _, err := exec.LookPath("node"); err != nil {
		miss("`node` is not on PATH (install Node 20, then `npm ci` in test/interop)")
	}
	for _, pkg := range []string{"jssip", "sip.js", "ws"} {
		if _, err := os.Stat(filepath.Join("node_modules", pkg)); err != nil {
			miss("test/interop/node_modules is missing " + pkg + " (run `npm ci` there)")
		}
	}
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu   sync.Mutex
	max  int
	buf  []byte
	lost int
}

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	if over := len(b.buf) - b.max; over > 0 {
		b.lost += over
		b.buf = append(b.buf[:0], b.buf[over:]...)
	}
	return len(p), nil
}

func (b *tailBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.lost > 0 {
		return fmt.Sprintf("[... %d bytes cut ...]\n%s", b.lost, b.buf)
	}
	return string(b.buf)
}

package server_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/presencehub/presencehub/internal/sipclient"
	"github.com/presencehub/presencehub/server/servertest"
)

func testCtx(t *testing.T) context.Context {
	// A bound on a test that hangs, not on its speed: a loaded CI machine
	// running two packages under -race takes several times a quiet one's.
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

var bearerLine = regexp.MustCompile(`(?m)^Authorization: Bearer .*\r\n`)

// wireRequest loads a real client capture from testdata/wire and gives it a
// fresh branch and, when token is set, a valid Bearer (the captured ones are dummies).
func wireRequest(t *testing.T, name, token string) *sip.Request {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "testdata", "wire", name))
	if err != nil {
		t.Fatal(err)
	}
	repl := ""
	if token != "" {
		repl = "Authorization: Bearer " + token + "\r\n"
	}
	data = bearerLine.ReplaceAll(data, []byte(repl))
	msg, err := sip.ParseMessage(data)
	if err != nil {
		t.Fatalf("parse %s: %v", name, err)
	}
	req := msg.(*sip.Request)
	req.Via().Params.Add("branch", sip.GenerateBranch())
	return req
}

func do(t *testing.T, c *sipclient.Client, req *sip.Request) *sip.Response {
	t.Helper()
	res, err := c.Do(testCtx(t), req)
	if err != nil {
		t.Fatalf("%s: %v", req.Method, err)
	}
	return res
}

// header joins every value of a header (a 200 to REGISTER lists all contacts).
func header(m interface{ GetHeaders(string) []sip.Header }, name string) string {
	var vals []string
	for _, h := range m.GetHeaders(name) {
		vals = append(vals, h.Value())
	}
	return strings.Join(vals, ", ")
}

func newReq(t *testing.T, c *sipclient.Client, method sip.RequestMethod, from, to string, hdrs ...string) *sip.Request {
	t.Helper()
	req, err := c.NewRequest(method, servertest.AOR(from), servertest.AOR(to))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdrs); i += 2 {
		req.AppendHeader(sip.NewHeader(hdrs[i], hdrs[i+1]))
	}
	return req
}

func withBody(req *sip.Request, ct string, body []byte) *sip.Request {
	h := sip.ContentTypeHeader(ct)
	req.AppendHeader(&h)
	req.SetBody(body)
	return req
}

// watcher collects the NOTIFYs a client receives.
type watcher struct {
	ch chan *sip.Request
}

func newWatcher() (*watcher, sipclient.Options) {
	w := &watcher{ch: make(chan *sip.Request, 1000)}
	return w, sipclient.Options{Incoming: w.ch}
}

func (w *watcher) next(t *testing.T) *sip.Request {
	t.Helper()
	select {
	case r := <-w.ch:
		return r
	case <-time.After(5 * time.Second):
		t.Fatal("no NOTIFY within 5s")
		return nil
	}
}

// none asserts that no request arrives within d.
func (w *watcher) none(t *testing.T, d time.Duration) {
	t.Helper()
	select {
	case r := <-w.ch:
		t.Fatalf("unexpected %s: %s / %s", r.Method, header(r, "Subscription-State"), r.Body())
	case <-time.After(d):
	}
}

var dialogState = regexp.MustCompile(`<state[^>]*>([a-z]+)</state>`)

// lamp is the first dialog's state of a dialog-info body, or "idle".
func lamp(body []byte) string {
	m := dialogState.FindSubmatch(body)
	if m == nil {
		return "idle"
	}
	return string(m[1])
}

func dialogInfo(aor, id, state string) []byte {
	var b bytes.Buffer
	b.WriteString(`<?xml version="1.0"?><dialog-info xmlns="urn:ietf:params:xml:ns:dialog-info" version="0" state="full" entity="`)
	b.WriteString(aor)
	b.WriteString(`">`)
	if state != "" {
		b.WriteString(`<dialog id="` + id + `" call-id="c-` + id + `" direction="recipient"><state>` + state + `</state></dialog>`)
	}
	b.WriteString(`</dialog-info>`)
	return b.Bytes()
}

func pidf(aor, basic, note string) []byte {
	return []byte(`<?xml version="1.0" encoding="UTF-8"?><presence xmlns="urn:ietf:params:xml:ns:pidf" entity="` + aor +
		`"><tuple id="t1"><status><basic>` + basic + `</basic></status><note>` + note + `</note></tuple></presence>`)
}

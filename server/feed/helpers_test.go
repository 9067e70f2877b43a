package feed_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/presencehub/presencehub/compositor"
	"github.com/presencehub/presencehub/internal/sipclient"
	"github.com/presencehub/presencehub/server/auth"
	"github.com/presencehub/presencehub/server/feed"
	"github.com/presencehub/presencehub/server/servertest"
)

// plain is an HTTP client that keeps no idle connection: the hub's bound
// on HTTP connections per address counts idle ones too.
var plain = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}

// event is one Server-Sent Event as the client read it.
type event struct {
	ID, Event, Data string
	Comment         bool // a ":" line (keepalive)
}

// stream is a real HTTP client reading GET /api/feed over 127.0.0.1.
type stream struct {
	t      *testing.T
	res    *http.Response
	events chan event
	done   chan struct{}
	bytes  int64 // read so far; guarded by mu
	mu     sync.Mutex
	start  chan struct{} // reading begins when it is closed
}

// feedURL is the feed URL on hub for query (token added when tok is set).
func feedURL(hub *servertest.Hub, query, tok string) string {
	u := hub.URL + "/api/feed?" + query
	if tok != "" {
		u += "&access_token=" + tok
	}
	return u
}

// get sends the request and returns the response (the body still open).
func get(t testing.TB, client *http.Client, url string, hdr map[string]string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	if client == nil {
		client = plain
	}
	res, err := client.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return res
}

// open opens a feed as sub (every extension allowed) and checks the answer
// is an event stream.
func open(t *testing.T, hub *servertest.Hub, query string, hdr map[string]string) *stream {
	t.Helper()
	return openWith(t, nil, feedURL(hub, query, hub.Token("wallboard", nil)), hdr)
}

func openWith(t *testing.T, client *http.Client, url string, hdr map[string]string) *stream {
	t.Helper()
	s := openPaused(t, client, url, hdr)
	close(s.start)
	return s
}

// openPaused opens a stream that reads nothing until s.start is closed.
func openPaused(t *testing.T, client *http.Client, url string, hdr map[string]string) *stream {
	t.Helper()
	res := get(t, client, url, hdr)
	if res.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		t.Fatalf("GET %s: %d %s", url, res.StatusCode, body)
	}
	if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
		t.Fatalf("Content-Type %q, want text/event-stream", ct)
	}
	s := &stream{t: t, res: res, events: make(chan event, 4096), done: make(chan struct{}), start: make(chan struct{})}
	go s.read()
	t.Cleanup(s.close)
	return s
}

// read parses the text/event-stream format (WHATWG HTML §9.2.6) until the
// body ends.
func (s *stream) read() {
	defer close(s.done)
	defer close(s.events)
	<-s.start
	br := bufio.NewReaderSize(s.res.Body, 64<<10)
	var ev event
	var data []string
	for {
		line, err := br.ReadString('\n')
		s.mu.Lock()
		s.bytes += int64(len(line))
		s.mu.Unlock()
		if err != nil {
			return
		}
		line = strings.TrimSuffix(line, "\n")
		switch {
		case line == "":
			if len(data) > 0 || ev.Event != "" {
				ev.Data = strings.Join(data, "\n")
				s.events <- ev
			}
			ev, data = event{}, nil
		case strings.HasPrefix(line, ":"):
			s.events <- event{Comment: true, Data: strings.TrimSpace(line[1:])}
		default:
			field, value, _ := strings.Cut(line, ":")
			value = strings.TrimPrefix(value, " ")
			switch field {
			case "id":
				ev.ID = value
			case "event":
				ev.Event = value
			case "data":
				data = append(data, value)
			}
		}
	}
}

func (s *stream) close() {
	select {
	case <-s.start:
	default:
		close(s.start)
	}
	s.res.Body.Close()
	<-s.done
}

// next returns the next event (comments skipped unless comments is set).
func (s *stream) next(comments bool) event {
	s.t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case ev, ok := <-s.events:
			if !ok {
				s.t.Fatal("stream ended")
			}
			if ev.Comment && !comments {
				continue
			}
			return ev
		case <-timeout:
			s.t.Fatal("no event within 10 s")
		}
	}
}

// none checks no event (other than comments) arrives within d.
func (s *stream) none(d time.Duration) {
	s.t.Helper()
	timeout := time.After(d)
	for {
		select {
		case ev, ok := <-s.events:
			if !ok {
				return
			}
			if !ev.Comment {
				s.t.Fatalf("unexpected event %+v", ev)
			}
		case <-timeout:
			return
		}
	}
}

type snapshot struct {
	ID        uint64               `json:"id"`
	Resources []feed.ResourceState `json:"resources"`
}

func (s *stream) snapshot() (snapshot, event) {
	s.t.Helper()
	ev := s.next(false)
	if ev.Event != "snapshot" {
		s.t.Fatalf("event %q, want snapshot: %+v", ev.Event, ev)
	}
	var snap snapshot
	if err := json.Unmarshal([]byte(ev.Data), &snap); err != nil {
		s.t.Fatalf("snapshot %q: %v", ev.Data, err)
	}
	if strconv.FormatUint(snap.ID, 10) != ev.ID {
		s.t.Fatalf("snapshot id %d in data, %q in the id field", snap.ID, ev.ID)
	}
	return snap, ev
}

func (s *stream) state() (feed.ResourceState, event) {
	s.t.Helper()
	ev := s.next(false)
	if ev.Event != "state" {
		s.t.Fatalf("event %q, want state: %+v", ev.Event, ev)
	}
	var st feed.ResourceState
	if err := json.Unmarshal([]byte(ev.Data), &st); err != nil {
		s.t.Fatalf("state %q: %v", ev.Data, err)
	}
	return st, ev
}

// publisher publishes over SIP as a PBX would (publish ["*"]).
type publisher struct {
	t     testing.TB
	cl    *sipclient.Client
	mu    sync.Mutex
	etags map[string]string
}

func newPublisher(t testing.TB, hub *servertest.Hub) *publisher {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cl, err := sipclient.Dial(ctx, hub.WS, sipclient.Options{Token: hub.Token("pbx", func(c *auth.Claims) {
		c.Publish = []string{"*"}
	})})
	if err != nil {
		t.Fatalf("publisher: %v", err)
	}
	t.Cleanup(cl.Close)
	return &publisher{t: t, cl: cl, etags: map[string]string{}}
}

// publish sends a PUBLISH (a modify of the previous one of ext and event).
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
	ct := sip.ContentTypeHeader(map[string]string{"dialog": compositor.ContentTypeDialogInfo, "presence": compositor.ContentTypePIDF, "message-summary": compositor.ContentTypeMessageSummary}[event])
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

// direct publishes through the hub's compositor (the same store and
// change feed, without the SIP round trip): for many changes quickly.
type direct struct {
	tb    testing.TB
	comp  *compositor.Compositor
	etags map[string]string
}

func newDirect(tb testing.TB, hub *servertest.Hub) *direct {
	return &direct{tb: tb, comp: hub.Server.Compositor(), etags: map[string]string{}}
}

func (d *direct) publish(ext, event, body string) {
	d.tb.Helper()
	k := ext + " " + event
	req := compositor.PublishRequest{Resource: servertest.AOR(ext), Event: event, Expires: 600, Body: []byte(body),
		ContentType: map[string]string{"dialog": compositor.ContentTypeDialogInfo, "presence": compositor.ContentTypePIDF, "message-summary": compositor.ContentTypeMessageSummary}[event],
		Publisher:   "pbx"}
	if e := d.etags[k]; e != "" {
		req.IfMatch = []string{e}
	}
	res, err := d.comp.Publish(context.Background(), req)
	if err != nil {
		d.tb.Fatalf("publish %s: %v", k, err)
	}
	d.etags[k] = res.ETag
}

// dialogInfo is a full dialog-info document (RFC 4235) for ext.
func dialogInfo(ext string, dialogs ...string) string {
	return `<?xml version="1.0" encoding="UTF-8"?>` + "\n" +
		`<dialog-info xmlns="urn:ietf:params:xml:ns:dialog-info" version="0" state="full" entity="` +
		servertest.AOR(ext) + `">` + strings.Join(dialogs, "") + `</dialog-info>`
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

// pidfDoc is a PIDF document (RFC 3863); onThePhone adds an RPID person (RFC 4480).
func pidfDoc(ext, basic, note string, onThePhone bool) string {
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

// slowClient is an HTTP client whose sockets have a tiny receive buffer:
// the hub's writes block soon when it does not read.
func slowClient() *http.Client {
	d := &net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 2048) })
		if err != nil {
			return err
		}
		return serr
	}}
	return &http.Client{Transport: &http.Transport{DialContext: d.DialContext, ReadBufferSize: 1024}}
}

// metric returns the sum of a metric's samples whose line contains match.
func metric(t *testing.T, hub *servertest.Hub, name, match string) float64 {
	t.Helper()
	res := get(t, nil, hub.URL+"/metrics", nil)
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	var sum float64
	for _, line := range strings.Split(string(body), "\n") {
		if strings.HasPrefix(line, name) && strings.Contains(line, match) {
			f := strings.Fields(line)
			v, _ := strconv.ParseFloat(f[len(f)-1], 64)
			sum += v
		}
	}
	return sum
}

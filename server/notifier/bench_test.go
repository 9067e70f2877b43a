package notifier

// Benchmarks of the notifier's hot path: fan-out of one state
// change to 1, 100 and 10,000 watchers, deduplication, NOTIFY building and
// SUBSCRIBE handling. Subscriptions are made through HandleSubscribe on real
// flows whose connection only records what is sent; every NOTIFY is
// answered 200 through flow.HandleAnswer, as the hub's dispatch does with
// an answer it scanned.
//
//	go test -run '^$' -bench . -benchmem ./server/notifier/

import (
	"bytes"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/emiago/sipgo/sip"
	"github.com/presencehub/presencehub/compositor"
	"github.com/presencehub/presencehub/compositor/dialoginfo"
	"github.com/presencehub/presencehub/server/auth"
	"github.com/presencehub/presencehub/server/flow"
)

const benchDomain = "bench.test"

// benchConn is a flow.Conn that keeps the top-Via branch of every request
// sent, so the benchmark can answer them (and, for the unit tests, every
// message when keep is set).
type benchConn struct {
	mu       sync.Mutex
	branches []flow.Branch
	bytes    int
	keep     bool
	msgs     [][]byte
	err      error // returned by Send when set (a closing connection)
}

func (c *benchConn) Send(msg []byte) error { return c.SendRecycle(msg, nil) }

// SendRecycle hands msg back at once, as wsproto's writer does once it has
// copied msg into its socket buffer (flow.Recycler).
func (c *benchConn) SendRecycle(msg []byte, recycle func([]byte)) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return c.err
	}
	if recycle != nil {
		defer recycle(msg)
	}
	c.bytes += len(msg)
	if c.keep {
		c.msgs = append(c.msgs, bytes.Clone(msg))
	}
	if bytes.HasPrefix(msg, []byte("NOTIFY ")) {
		i := bytes.Index(msg, []byte(";branch="))
		j := bytes.IndexByte(msg[i:], '\r')
		b, ok := flow.ParseBranch(string(msg[i+8 : i+j]))
		if !ok {
			panic("NOTIFY with a branch not of the hub's shape: " + string(msg[i+8:i+j]))
		}
		c.branches = append(c.branches, b)
	}
	return nil
}
func (c *benchConn) Close(websocket.StatusCode, string) {}
func (c *benchConn) RemoteIP() string                   { return "127.0.0.1" }

// benchFlow is a flow with its connection.
type benchFlow struct {
	fl      *flow.Flow
	conn    *benchConn
	scratch []flow.Branch // the branches being answered
}

func newBenchFlow(id *auth.Identity) *benchFlow {
	c := &benchConn{}
	return &benchFlow{fl: flow.New(c, id), conn: c}
}

// answerAll answers every NOTIFY sent so far with 200; it returns how many.
func (f *benchFlow) answerAll() int { return answer(f, 200) }

// answer answers every NOTIFY sent on f so far with code, the way the hub's
// dispatch does for an answer it scanned (flow.ScanAnswer, then
// flow.HandleAnswer). The answers may send the next NOTIFYs.
func answer(f *benchFlow, code int) int {
	f.conn.mu.Lock()
	f.scratch = append(f.scratch[:0], f.conn.branches...)
	f.conn.branches = f.conn.branches[:0]
	f.conn.mu.Unlock()
	for _, b := range f.scratch {
		f.fl.HandleAnswer(b, code)
	}
	return len(f.scratch)
}

// benchViews serves one composed view per resource.
type benchViews struct {
	mu sync.Mutex
	v  map[string]compositor.View
}

func (b *benchViews) View(resource, event string) compositor.View {
	b.mu.Lock()
	defer b.mu.Unlock()
	if v, ok := b.v[resource]; ok {
		return v
	}
	return compositor.View{Resource: resource, Event: event}
}

// benchView is the view of resource after change number i: one dialog
// whose state and target change every time, as a ringing/answered lamp.
func benchView(resource string, i int) compositor.View {
	state := dialoginfo.Early
	if i%2 == 1 {
		state = dialoginfo.Confirmed
	}
	return compositor.View{Resource: resource, Event: compositor.EventDialog, Rev: uint64(i + 1), Dialogs: []dialoginfo.Dialog{{
		ID: "call-1", CallID: "call-1", Direction: dialoginfo.Recipient, State: state,
		LocalIdentity: resource, LocalTarget: "sip:1001@10.0.0.1;seq=" + strconv.Itoa(i),
		RemoteIdentity: "sip:2001@" + benchDomain,
	}}}
}

// benchRender is the built-in dialog provider's rendering (package
// providers imports this one): the version number goes in at VersionAt.
func benchRender(v compositor.View, _ string) (Body, error) {
	data, at := v.Template()
	return Body{Data: data, VersionAt: at}, nil
}

type benchHub struct {
	n      *Notifier
	views  *benchViews
	signer auth.Signer
	ver    *auth.Verifier
	flows  []*benchFlow
}

func newBenchHub(tb testing.TB, configure ...func(*Config)) *benchHub {
	secret := []byte("0123456789abcdef0123456789abcdef")
	v, err := auth.NewVerifier(auth.Config{Secret: secret, Domain: benchDomain})
	if err != nil {
		tb.Fatal(err)
	}
	reg := &Registry{}
	if err := reg.Register(Provider{Name: "dialog-info", Event: compositor.EventDialog, ContentType: "application/dialog-info+xml", Render: benchRender}); err != nil {
		tb.Fatal(err)
	}
	views := &benchViews{v: map[string]compositor.View{}}
	cfg := Config{Views: views, Providers: reg, Contact: "<sip:presencehub@" + benchDomain + ";transport=ws>", ViaHost: benchDomain,
		MaxPerFlow: 100000, MaxPerWatcher: 100000}
	for _, f := range configure {
		f(&cfg)
	}
	n := New(cfg)
	return &benchHub{n: n, views: views, signer: auth.Signer{Secret: secret, Domain: benchDomain}, ver: v}
}

func (h *benchHub) identity(tb testing.TB, sub string) *auth.Identity {
	tok, err := h.signer.Mint(sub, time.Hour, nil)
	if err != nil {
		tb.Fatal(err)
	}
	id, err := h.ver.Verify(tok)
	if err != nil {
		tb.Fatal(err)
	}
	return id
}

// subscribeRequest is a JsSIP-like initial SUBSCRIBE from watcher to resource.
func subscribeRequest(tb testing.TB, watcher, resource, callID string) *sip.Request {
	raw := "SUBSCRIBE sip:" + resource + "@" + benchDomain + " SIP/2.0\r\n" +
		"Via: SIP/2.0/WSS 5ak4vk6q3m0h.invalid;branch=z9hG4bK" + callID + "\r\n" +
		"Max-Forwards: 69\r\n" +
		"To: <sip:" + resource + "@" + benchDomain + ">\r\n" +
		"From: \"Attendant\" <sip:" + watcher + "@" + benchDomain + ">;tag=t" + callID + "\r\n" +
		"Call-ID: " + callID + "\r\n" +
		"CSeq: 8133 SUBSCRIBE\r\n" +
		"Event: dialog\r\n" +
		"Accept: application/dialog-info+xml\r\n" +
		"Expires: 3600\r\n" +
		"Contact: <sip:ph7ag5s0@5ak4vk6q3m0h.invalid;transport=ws;ob>\r\n" +
		"Supported: outbound\r\n" +
		"User-Agent: JsSIP 3.13.8\r\n" +
		"Content-Length: 0\r\n\r\n"
	msg, err := sip.ParseMessage([]byte(raw))
	if err != nil {
		tb.Fatal(err)
	}
	return msg.(*sip.Request)
}

// watch subscribes watchers to resource, 100 per flow, and answers the
// first NOTIFYs.
func (h *benchHub) watch(tb testing.TB, resource string, watchers int) {
	id := h.identity(tb, "attendant")
	var f *benchFlow
	for i := range watchers {
		if i%100 == 0 {
			f = newBenchFlow(id)
			h.flows = append(h.flows, f)
		}
		req := subscribeRequest(tb, "attendant", resource, resource+"-"+strconv.Itoa(i))
		if code := h.n.HandleSubscribe(req, f.fl, id); code != 200 {
			tb.Fatalf("SUBSCRIBE answered %d", code)
		}
	}
	h.answerAll()
}

func (h *benchHub) answerAll() int {
	n := 0
	for _, f := range h.flows {
		n += f.answerAll()
	}
	return n
}

// BenchmarkFanOut: one state change of one resource rendered once and sent
// to every watcher, each NOTIFY answered 200. ns/NOTIFY and allocs/NOTIFY
// are per subscriber; the render is shared.
func BenchmarkFanOut(b *testing.B) {
	for _, watchers := range []int{1, 100, 10000} {
		b.Run(fmt.Sprintf("watchers=%d", watchers), func(b *testing.B) {
			h := newBenchHub(b)
			h.watch(b, "1001", watchers)
			sent := 0
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				h.n.fanOut(benchView("sip:1001@"+benchDomain, i+1))
				sent += h.answerAll()
			}
			if sent != b.N*watchers {
				b.Fatalf("%d NOTIFYs for %d changes × %d watchers", sent, b.N, watchers)
			}
			reportPerNotify(b, sent)
		})
	}
}

// BenchmarkFanOut_Deduplicated: the same state again: rendered once, and
// every watcher's NOTIFY suppressed (deduplication: docs/protocol.md, "SUBSCRIBE and NOTIFY").
func BenchmarkFanOut_Deduplicated(b *testing.B) {
	for _, watchers := range []int{100, 10000} {
		b.Run(fmt.Sprintf("watchers=%d", watchers), func(b *testing.B) {
			h := newBenchHub(b)
			h.watch(b, "1001", watchers)
			v := benchView("sip:1001@"+benchDomain, 1)
			h.n.fanOut(v)
			h.answerAll()
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				v.Rev = uint64(i + 10)
				h.n.fanOut(v)
			}
			if sent := h.answerAll(); sent != 0 {
				b.Fatalf("%d NOTIFYs for an unchanged state", sent)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*watchers), "ns/watcher")
		})
	}
}

func reportPerNotify(b *testing.B, notifies int) {
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(notifies), "ns/NOTIFY")
	// allocs/op and B/op are per change; per NOTIFY from testing's counts is
	// not exposed, so report the change count too for the reader.
	b.ReportMetric(float64(notifies)/float64(b.N), "NOTIFYs/op")
}

// BenchmarkBuild: serializing one NOTIFY (request line, dialog headers,
// CSeq, branch, Subscription-State, body with the version inserted).
func BenchmarkBuild(b *testing.B) {
	h := newBenchHub(b)
	h.watch(b, "1001", 1)
	var s *subscription
	for _, s = range h.n.byResource[resourceKey{"sip:1001@" + benchDomain, compositor.EventDialog}] {
	}
	body, _ := benchRender(benchView("sip:1001@"+benchDomain, 3), "")
	o := outgoing{body: body}
	b.ReportAllocs()
	var n int
	for b.Loop() {
		s.mu.Lock()
		n += len(s.build(o, flow.NewBranch()))
		s.mu.Unlock()
	}
	b.SetBytes(int64(n / b.N))
}

// BenchmarkSubscribe: HandleSubscribe of a parsed initial SUBSCRIBE: checks,
// provider choice, dialog state, 200 serialized and queued, first NOTIFY
// rendered, built and queued (parsing is in the server benchmarks). The
// subscriptions go to 1,000 resources, or all to one (a popular lamp: the
// zombie check scans that resource's subscriptions of the same watcher).
func BenchmarkSubscribe(b *testing.B) {
	for _, resources := range []int{1000, 1} {
		b.Run(fmt.Sprintf("resources=%d", resources), func(b *testing.B) {
			h := newBenchHub(b)
			id := h.identity(b, "attendant")
			req := subscribeRequest(b, "attendant", "1001", "first")
			callID, from := req.CallID(), req.From()
			var f *benchFlow
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				if i%1000 == 0 {
					f = newBenchFlow(id)
					h.flows = append(h.flows, f)
				}
				req.Recipient.User = strconv.Itoa(1000 + i%resources)
				*callID = sip.CallIDHeader("bench-" + strconv.Itoa(i))
				from.Params.Add("tag", strconv.Itoa(i))
				if code := h.n.HandleSubscribe(req, f.fl, id); code != 200 {
					b.Fatalf("SUBSCRIBE answered %d", code)
				}
			}
		})
	}
}

package server

// Benchmarks of the hub's per-message hot path: one WebSocket
// message in, through handleMessage (sipgo parse, checks, rate limit,
// authorization, the handler, the answer serialized and queued on the flow).
// The connection only records what is sent; there is no socket.
//
//	go test -run '^$' -bench . -benchmem ./server/

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/emiago/sipgo/sip"
	"github.com/presencehub/presencehub/compositor/dialoginfo"
	"github.com/presencehub/presencehub/compositor/store"
	"github.com/presencehub/presencehub/compositor/store/memstore"
	"github.com/presencehub/presencehub/compositor/store/sqlitestore"
	"github.com/presencehub/presencehub/server/auth"
	"github.com/presencehub/presencehub/server/flow"
)

const benchDomain = "bench.test"

// benchConn is a flow connection that keeps the last message sent and the
// branches of the NOTIFYs, so they can be answered.
type benchConn struct {
	mu       sync.Mutex
	last     []byte
	branches []string
}

func (c *benchConn) Send(msg []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.last = msg
	if i := bytes.Index(msg, []byte(";branch=")); i >= 0 && bytes.HasPrefix(msg, []byte("NOTIFY ")) {
		j := bytes.IndexByte(msg[i:], '\r')
		c.branches = append(c.branches, string(msg[i+8:i+j]))
	}
	return nil
}
func (c *benchConn) Close(websocket.StatusCode, string) {}
func (c *benchConn) RemoteIP() string                   { return "127.0.0.1" }

func (c *benchConn) status() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	line, _, _ := bytes.Cut(c.last, []byte("\r\n"))
	return string(line)
}

type benchServer struct {
	s      *Server
	signer auth.Signer
}

func newBenchServer(b testing.TB, st store.Store) *benchServer {
	b.Helper()
	secret := []byte("0123456789abcdef0123456789abcdef")
	v, err := auth.NewVerifier(auth.Config{Secret: secret, Domain: benchDomain})
	if err != nil {
		b.Fatal(err)
	}
	if st == nil {
		st = memstore.New(memstore.Options{})
	}
	s, err := New(Config{Domain: benchDomain, Verifier: v, Store: st, RequestsPerSecond: 1 << 30,
		MaxSubsPerConn: 1 << 30, MaxSubsPerUser: 1 << 30})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	return &benchServer{s: s, signer: auth.Signer{Secret: secret, Domain: benchDomain}}
}

func (bs *benchServer) token(b testing.TB, sub string, publish ...string) string {
	tok, err := bs.signer.Mint(sub, time.Hour, func(c *auth.Claims) { c.Publish = publish })
	if err != nil {
		b.Fatal(err)
	}
	return tok
}

// okETag fails unless the last answer c got is a 200 and returns its
// SIP-ETag. (No tb.Helper: it would add to the CPU the benchmarks measure.)
func (c *benchConn) okETag(tb testing.TB) string {
	c.mu.Lock()
	res := string(c.last)
	c.mu.Unlock()
	if !strings.HasPrefix(res, "SIP/2.0 200 ") {
		tb.Fatalf("answer %q", res)
	}
	_, rest, _ := strings.Cut(res, "SIP-ETag: ")
	etag, _, _ := strings.Cut(rest, "\r\n")
	return etag
}

// flow returns a flow authenticated at the upgrade with tok ("" = none).
func (bs *benchServer) flow(b testing.TB, tok string) (*flow.Flow, *benchConn) {
	c := &benchConn{}
	var id *auth.Identity
	if tok != "" {
		var err error
		if id, err = bs.s.cfg.Verifier.Verify(tok); err != nil {
			b.Fatal(err)
		}
	}
	return flow.New(c, id), c
}

// run feeds msg to the hub b.N times, msg(i) making message number i, and
// checks the answer's status line.
func (bs *benchServer) run(b *testing.B, fl *flow.Flow, c *benchConn, want string, msg func(i int) []byte) {
	lim := newLimiter(1<<30, 1<<30, 1)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		bs.s.handleMessage(fl, lim, msg(i))
		if i == 0 {
			if got := c.status(); got != want {
				b.Fatalf("answer %q, want %q", got, want)
			}
		}
	}
}

// A JsSIP REGISTER (testdata/wire/jssip-node/01-c2s-REGISTER.sip).
func registerMsg(i int, bearer string) []byte {
	auth := ""
	if bearer != "" {
		auth = "Authorization: Bearer " + bearer + "\r\n"
	}
	n := strconv.Itoa(i)
	return []byte("REGISTER sip:" + benchDomain + " SIP/2.0\r\n" +
		"Via: SIP/2.0/WS takslrfbmglr.invalid;branch=z9hG4bK" + n + "\r\n" +
		"Max-Forwards: 69\r\n" +
		"To: <sip:1001@" + benchDomain + ">\r\n" +
		"From: \"Ext 1001\" <sip:1001@" + benchDomain + ">;tag=ab8a7g0rg3\r\n" +
		"Call-ID: adf613nelghm5r18n94pjj\r\n" +
		"CSeq: " + strconv.Itoa(i+1) + " REGISTER\r\n" + auth +
		"Expires: 300\r\n" +
		"Contact: <sip:k80rn40j@takslrfbmglr.invalid;transport=ws>;+sip.ice;reg-id=1;+sip.instance=\"<urn:uuid:01fa551a-e007-4482-85ed-6c6353feaea3>\";expires=300\r\n" +
		"Allow: INVITE,ACK,CANCEL,BYE,UPDATE,MESSAGE,OPTIONS,REFER,INFO,NOTIFY,SUBSCRIBE\r\n" +
		"Supported: path,gruu,outbound\r\n" +
		"User-Agent: JsSIP 3.13.8\r\n" +
		"Content-Length: 0\r\n\r\n")
}

// BenchmarkRegister: a REGISTER refresh parsed, authorized (the token of
// the connection, or a Bearer on the request verified each time) and
// answered 200 with the bindings.
func BenchmarkRegister(b *testing.B) {
	b.Run("auth=connection", func(b *testing.B) {
		bs := newBenchServer(b, nil)
		fl, c := bs.flow(b, bs.token(b, "1001"))
		bs.run(b, fl, c, "SIP/2.0 200 OK", func(i int) []byte { return registerMsg(i, "") })
	})
	b.Run("auth=bearer", func(b *testing.B) {
		bs := newBenchServer(b, nil)
		fl, c := bs.flow(b, "")
		tok := bs.token(b, "1001")
		bs.run(b, fl, c, "SIP/2.0 200 OK", func(i int) []byte { return registerMsg(i, tok) })
	})
}

func subscribeMsg(i int) []byte {
	n := strconv.Itoa(i)
	return []byte("SUBSCRIBE sip:" + strconv.Itoa(1000+i%1000) + "@" + benchDomain + " SIP/2.0\r\n" +
		"Via: SIP/2.0/WSS 5ak4vk6q3m0h.invalid;branch=z9hG4bK" + n + "\r\n" +
		"Max-Forwards: 69\r\n" +
		"To: <sip:" + strconv.Itoa(1000+i%1000) + "@" + benchDomain + ">\r\n" +
		"From: \"Attendant\" <sip:console@" + benchDomain + ">;tag=t" + n + "\r\n" +
		"Call-ID: c" + n + "\r\n" +
		"CSeq: 8133 SUBSCRIBE\r\n" +
		"Event: dialog\r\n" +
		"Accept: application/dialog-info+xml\r\n" +
		"Expires: 3600\r\n" +
		"Contact: <sip:ph7ag5s0@5ak4vk6q3m0h.invalid;transport=ws;ob>\r\n" +
		"Supported: outbound\r\n" +
		"User-Agent: JsSIP 3.13.8\r\n" +
		"Content-Length: 0\r\n\r\n")
}

// BenchmarkSubscribe: an initial dialog SUBSCRIBE (over 1,000 resources)
// parsed, authorized, answered 200, and its first NOTIFY rendered, built
// and queued.
func BenchmarkSubscribe(b *testing.B) {
	bs := newBenchServer(b, nil)
	fl, c := bs.flow(b, bs.token(b, "console"))
	bs.run(b, fl, c, "NOTIFY sip:ph7ag5s0@5ak4vk6q3m0h.invalid;transport=ws;ob SIP/2.0", subscribeMsg)
}

func publishMsg(i int, etag string) []byte { return publishMsgFor("1001", i, etag) }

// publishMsgFor is PUBLISH number i of user's dialog state (CSeq i+1),
// modifying the publication etag names ("": a new one).
func publishMsgFor(user string, i int, etag string) []byte {
	n := strconv.Itoa(i)
	state := dialoginfo.Early
	if i%2 == 1 {
		state = dialoginfo.Confirmed
	}
	doc := dialoginfo.Document{State: "full", Entity: "sip:" + user + "@" + benchDomain, Dialogs: []dialoginfo.Dialog{{
		ID: "call-1", CallID: "call-1", Direction: dialoginfo.Recipient, State: state,
		LocalIdentity: "sip:" + user + "@" + benchDomain, LocalTarget: "sip:1001@10.0.0.1;seq=" + n,
		RemoteIdentity: "sip:2001@" + benchDomain,
	}}}
	body := doc.AppendXML(nil)
	ifMatch := ""
	if etag != "" {
		ifMatch = "SIP-If-Match: " + etag + "\r\n"
	}
	return []byte("PUBLISH sip:" + user + "@" + benchDomain + " SIP/2.0\r\n" +
		"Via: SIP/2.0/WS pbx.invalid;branch=z9hG4bK" + n + "\r\n" +
		"Max-Forwards: 70\r\n" +
		"To: <sip:" + user + "@" + benchDomain + ">\r\n" +
		"From: <sip:" + user + "@" + benchDomain + ">;tag=pbx1\r\n" +
		"Call-ID: pub-" + user + "\r\n" +
		"CSeq: " + strconv.Itoa(i+1) + " PUBLISH\r\n" +
		"Event: dialog\r\n" +
		"Expires: 3600\r\n" + ifMatch +
		"Content-Type: application/dialog-info+xml\r\n" +
		"Content-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + string(body))
}

// BenchmarkPublish: a dialog-state PUBLISH modifying its publication
// (SIP-If-Match): parsed, authorized, body parsed and validated, stored
// (in memory, or SQLite: one commit per PUBLISH, nothing concurrent to
// group with), composed and answered with a new SIP-ETag. The change feed
// and the notifier run behind it (no subscribers here).
func BenchmarkPublish(b *testing.B) {
	for _, name := range []string{"memory", "sqlite"} {
		b.Run("store="+name, func(b *testing.B) {
			var st store.Store
			if name == "sqlite" {
				var err error
				if st, err = sqlitestore.Open(context.Background(), filepath.Join(b.TempDir(), "bench.db"), sqlitestore.Options{}); err != nil {
					b.Fatal(err)
				}
			}
			bs := newBenchServer(b, st)
			fl, c := bs.flow(b, bs.token(b, "pbx", "*"))
			lim := newLimiter(1<<30, 1<<30, 1)
			etag := ""
			b.ReportAllocs()
			c0 := cpuTime() // all goroutines: the notifier and the store's writer too
			for i := 0; b.Loop(); i++ {
				bs.s.handleMessage(fl, lim, publishMsg(i, etag))
				etag = c.okETag(b)
			}
			b.ReportMetric(float64(cpuTime()-c0)/float64(b.N), "cpu-ns/op")
		})
	}
}

// answerConn is a flow connection that hands every PUBLISH answer to a
// channel: the user it was for and its SIP-ETag.
type answerConn struct{ answers chan [2]string }

func (c *answerConn) Send(msg []byte) error {
	res := string(msg)
	if !strings.HasPrefix(res, "SIP/2.0 200 ") {
		return fmt.Errorf("answer %q", res)
	}
	_, to, _ := strings.Cut(res, "To: <sip:")
	user, _, _ := strings.Cut(to, "@")
	_, tag, _ := strings.Cut(res, "SIP-ETag: ")
	etag, _, _ := strings.Cut(tag, "\r\n")
	c.answers <- [2]string{user, etag}
	return nil
}
func (c *answerConn) Close(websocket.StatusCode, string) {}
func (c *answerConn) RemoteIP() string                   { return "127.0.0.1" }

// BenchmarkPublishPipelined: a PBX's connection with one PUBLISH in flight
// for each of 64 extensions (each modifies its publication, SIP-If-Match of
// the previous answer), as the load generator's publisher sockets send
// them, handled with the connection's PUBLISH concurrency (lanes.go): 1
// processes them one at a time (one SQLite commit each); 32 lets the store
// group their commits. writes/commit is the store's average transaction.
func BenchmarkPublishPipelined(b *testing.B) {
	const users = 64
	for _, conc := range []int{1, 32} {
		b.Run(fmt.Sprintf("store=sqlite/concurrency=%d", conc), func(b *testing.B) {
			st, err := sqlitestore.Open(context.Background(), filepath.Join(b.TempDir(), "bench.db"), sqlitestore.Options{})
			if err != nil {
				b.Fatal(err)
			}
			bs := newBenchServer(b, st)
			conn := &answerConn{answers: make(chan [2]string, users)}
			id, err := bs.s.cfg.Verifier.Verify(bs.token(b, "pbx", "*"))
			if err != nil {
				b.Fatal(err)
			}
			fl := flow.New(conn, id)
			lim := newLimiter(1<<30, 1<<30, conc)
			seq := 0
			send := func(user, etag string) {
				bs.s.handleMessage(fl, lim, publishMsgFor(user, seq, etag))
				seq++
			}
			// Every extension's publication exists before the clock starts.
			for u := range users {
				send(strconv.Itoa(3000+u), "")
			}
			etags := map[string]string{}
			for range users {
				a := <-conn.answers
				etags[a[0]] = a[1]
			}
			stats0 := st.CommitStats()
			b.ReportAllocs()
			c0 := cpuTime()
			b.ResetTimer()
			for u := range users {
				user := strconv.Itoa(3000 + u)
				send(user, etags[user])
			}
			for done := 0; done < b.N; done++ {
				a := <-conn.answers // the reader handles the next PUBLISH of the extension answered
				if done+users < b.N {
					send(a[0], a[1])
				}
			}
			b.StopTimer()
			for range users - min(users, b.N) { // those sent beyond b.N: answered before the store closes
				<-conn.answers
			}
			b.ReportMetric(float64(cpuTime()-c0)/float64(max(b.N, users)), "cpu-ns/op")
			stats := st.CommitStats()
			b.ReportMetric(float64(stats.Writes-stats0.Writes)/float64(stats.Commits-stats0.Commits), "writes/commit")
			lim.lanes.wait()
		})
	}
}

// BenchmarkPublishSipgoPath: BenchmarkPublish/store=memory with every
// message through sipgo's parse and its answers built by sipgo, as before
// the plain path (server/plain.go): what the plain path saves.
func BenchmarkPublishSipgoPath(b *testing.B) {
	bs := newBenchServer(b, nil)
	bs.s.parseAll = true
	fl, c := bs.flow(b, bs.token(b, "pbx", "*"))
	lim := newLimiter(1<<30, 1<<30, 1)
	etag := ""
	b.ReportAllocs()
	c0 := cpuTime()
	for i := 0; b.Loop(); i++ {
		bs.s.handleMessage(fl, lim, publishMsg(i, etag))
		etag = c.okETag(b)
	}
	b.ReportMetric(float64(cpuTime()-c0)/float64(b.N), "cpu-ns/op")
}

// BenchmarkNotifyAnswer: the 200 a subscriber sends for each NOTIFY,
// parsed and matched to its NOTIFY's transaction (the hub reads one per
// NOTIFY it delivers).
func BenchmarkNotifyAnswer(b *testing.B) {
	bs := newBenchServer(b, nil)
	fl, c := bs.flow(b, bs.token(b, "console"))
	lim := newLimiter(1<<30, 1<<30, 1)
	// Requests whose answers the benchmark sends: b.N NOTIFYs in flight.
	answer := func(branch string) []byte {
		return []byte("SIP/2.0 200 OK\r\n" +
			"Via: SIP/2.0/WS " + benchDomain + ";branch=" + branch + "\r\n" +
			"To: <sip:console@" + benchDomain + ">;tag=t1\r\n" +
			"From: <sip:1001@" + benchDomain + ">;tag=hubtag1\r\n" +
			"Call-ID: c1\r\n" +
			"CSeq: 2 NOTIFY\r\n" +
			"Supported: outbound\r\n" +
			"Content-Length: 0\r\n\r\n")
	}
	answered := 0
	counter := flow.AnswerFunc(func(_ *sip.Response, err error) {
		if err == nil {
			answered++
		}
	})
	var msgs [][]byte
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if i%1024 == 0 {
			// NOTIFYs in flight to be answered by the next 1024 iterations.
			b.StopTimer()
			msgs = msgs[:0]
			for j := i; j < i+1024; j++ {
				branch, _ := flow.ParseBranch(fmt.Sprintf("z9hG4bK%016d", j)) // shaped like the hub's own
				fl.Request([]byte("NOTIFY sip:x@y.invalid SIP/2.0\r\n\r\n"), branch, counter)
				msgs = append(msgs, answer(branch.String()))
			}
			b.StartTimer()
		}
		bs.s.handleMessage(fl, lim, msgs[i%1024])
	}
	b.StopTimer()
	if answered != b.N {
		b.Fatalf("%d of %d answers matched", answered, b.N)
	}
	_ = c
	fl.Close()
}

// cpuTime is the process's user+system CPU time: on a shared machine
// wall-clock ns/op is noisy, cpu-ns/op (every goroutine and the kernel) is
// what one op costs.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

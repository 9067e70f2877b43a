package flow_test

import (
	"bytes"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/emiago/sipgo/sip"
	"github.com/presencehub/presencehub/server/flow"
)

// conn is a flow.Conn that records what is sent, in order.
type conn struct {
	mu      sync.Mutex
	sent    [][]byte
	sendErr error
}

func (c *conn) Send(msg []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.sendErr != nil {
		return c.sendErr
	}
	c.sent = append(c.sent, bytes.Clone(msg))
	return nil
}
func (c *conn) Close(websocket.StatusCode, string) {}
func (c *conn) RemoteIP() string                   { return "192.0.2.7" }

// outcome is what a request's callback was called with.
type outcome struct {
	calls int
	code  int
	err   error
}

// tx sends a request on fl and records its outcome.
type tx struct {
	branch flow.Branch
	mu     sync.Mutex
	out    outcome
}

func send(fl *flow.Flow) *tx {
	t := &tx{branch: flow.NewBranch()}
	fl.Request([]byte("NOTIFY sip:x@y.invalid SIP/2.0\r\nVia: SIP/2.0/WS hub.test;branch="+t.branch.String()+"\r\n\r\n"), t.branch,
		flow.AnswerFunc(func(res *sip.Response, err error) {
			t.mu.Lock()
			defer t.mu.Unlock()
			t.out.calls++
			t.out.err = err
			if res != nil {
				t.out.code = res.StatusCode
			}
		}))
	return t
}

func (t *tx) outcome() outcome {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.out
}

// response is a parsed final or provisional response whose top Via carries branch.
func response(t *testing.T, code int, branch string) *sip.Response {
	t.Helper()
	msg, err := sip.ParseMessage([]byte("SIP/2.0 " + itoa(code) + " X\r\nVia: SIP/2.0/WS hub.test;branch=" + branch +
		"\r\nCall-ID: c\r\nCSeq: 2 NOTIFY\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:c@d>;tag=2\r\nContent-Length: 0\r\n\r\n"))
	if err != nil {
		t.Fatal(err)
	}
	return msg.(*sip.Response)
}

func itoa(n int) string {
	return string([]byte{byte('0' + n/100), byte('0' + n/10%10), byte('0' + n%10)})
}

// A request is completed by the final response carrying its branch, once;
// anything else is stray and leaves it waiting.
func TestRequest_AnswerMatching(t *testing.T) {
	tests := []struct {
		name string
		// answer acts on the flow; it returns what HandleAnswer/HandleResponse reported.
		answer    func(t *testing.T, fl *flow.Flow, x *tx) bool
		reported  bool
		want      outcome
		stillOpen int // requests pending afterwards
	}{
		{"scanned 200 with its branch completes it", func(t *testing.T, fl *flow.Flow, x *tx) bool {
			return fl.HandleAnswer(x.branch, 200)
		}, true, outcome{calls: 1, code: 200}, 0},
		{"parsed 481 with its branch completes it", func(t *testing.T, fl *flow.Flow, x *tx) bool {
			return fl.HandleResponse(response(t, 481, x.branch.String()))
		}, true, outcome{calls: 1, code: 481}, 0},
		{"another branch is stray", func(t *testing.T, fl *flow.Flow, x *tx) bool {
			return fl.HandleAnswer(flow.NewBranch(), 200)
		}, false, outcome{}, 1},
		{"a provisional response keeps it waiting", func(t *testing.T, fl *flow.Flow, x *tx) bool {
			return fl.HandleResponse(response(t, 180, x.branch.String()))
		}, true, outcome{}, 1},
		{"a second final response is stray", func(t *testing.T, fl *flow.Flow, x *tx) bool {
			fl.HandleAnswer(x.branch, 200)
			return fl.HandleResponse(response(t, 500, x.branch.String()))
		}, false, outcome{calls: 1, code: 200}, 0},
		{"a response without Via is stray", func(t *testing.T, fl *flow.Flow, x *tx) bool {
			res := response(t, 200, x.branch.String())
			res.RemoveHeader("Via")
			return fl.HandleResponse(res)
		}, false, outcome{}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fl := flow.New(&conn{}, nil)
			defer fl.Close()
			x := send(fl)
			if got := tt.answer(t, fl, x); got != tt.reported {
				t.Errorf("reported %v, want %v", got, tt.reported)
			}
			if got := x.outcome(); got != tt.want {
				t.Errorf("callback %+v, want %+v", got, tt.want)
			}
			if got := fl.Pending(); got != tt.stillOpen {
				t.Errorf("pending %d, want %d", got, tt.stillOpen)
			}
		})
	}
}

// Requests go out in the order sent, and each is completed by its own
// answer whatever order the answers come in.
func TestRequest_OrderAndIndependentCompletion(t *testing.T) {
	tests := []struct {
		name  string
		order []int // answer order, by index of request
	}{
		{"in order", []int{0, 1, 2, 3}},
		{"reversed", []int{3, 2, 1, 0}},
		{"interleaved", []int{2, 0, 3, 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &conn{}
			fl := flow.New(c, nil)
			defer fl.Close()
			var xs []*tx
			for range tt.order {
				xs = append(xs, send(fl))
			}
			for i, x := range xs {
				if !bytes.Contains(c.sent[i], []byte(x.branch.String())) {
					t.Fatalf("message %d on the wire is not request %d", i, i)
				}
			}
			for k, i := range tt.order {
				if !fl.HandleAnswer(xs[i].branch, 200+i) {
					t.Fatalf("answer to request %d was stray", i)
				}
				for j, x := range xs {
					done := x.outcome().calls
					if want := answeredBefore(tt.order[:k+1], j); done != want {
						t.Fatalf("after answering %v: request %d called %d times, want %d", tt.order[:k+1], j, done, want)
					}
				}
			}
			for i, x := range xs {
				if got := x.outcome(); got.code != 200+i || got.err != nil {
					t.Errorf("request %d got %+v, want its own answer %d", i, got, 200+i)
				}
			}
		})
	}
}

func answeredBefore(answered []int, j int) int {
	for _, i := range answered {
		if i == j {
			return 1
		}
	}
	return 0
}

// Without an answer a request fails after Timer F; a closed flow or a
// failed write fails it at once. The callback runs exactly once.
func TestRequest_FailsWithoutAnswer(t *testing.T) {
	sendFailed := errors.New("write queue full")
	tests := []struct {
		name    string
		prepare func(fl *flow.Flow, c *conn)
		after   func(fl *flow.Flow)
		wantErr error
	}{
		{"Timer F expires", func(fl *flow.Flow, c *conn) { fl.SetTimerF(20 * time.Millisecond) }, nil, flow.ErrTimeout},
		{"the flow closes while waiting", nil, func(fl *flow.Flow) { fl.Close() }, flow.ErrClosed},
		{"the flow was closed before", func(fl *flow.Flow, c *conn) { fl.Close() }, nil, flow.ErrClosed},
		{"the write fails: the connection is gone", func(fl *flow.Flow, c *conn) { c.sendErr = sendFailed }, nil, flow.ErrClosed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &conn{}
			fl := flow.New(c, nil)
			defer fl.Close()
			if tt.prepare != nil {
				tt.prepare(fl, c)
			}
			x := send(fl)
			if tt.after != nil {
				tt.after(fl)
			}
			deadline := time.Now().Add(10 * time.Second)
			for x.outcome().calls == 0 && time.Now().Before(deadline) {
				time.Sleep(5 * time.Millisecond)
			}
			if got := x.outcome(); got.calls != 1 || !errors.Is(got.err, tt.wantErr) {
				t.Fatalf("callback %+v, want one call with %v", got, tt.wantErr)
			}
			if c.sendErr != nil && !errors.Is(x.outcome().err, c.sendErr) {
				t.Errorf("error %v does not carry the write's %v", x.outcome().err, c.sendErr)
			}
			if fl.HandleAnswer(x.branch, 200) {
				t.Error("a late answer completed a finished request")
			}
			if got := x.outcome().calls; got != 1 {
				t.Errorf("callback ran %d times", got)
			}
		})
	}
}

// Timer F is one sweep per flow, not a timer per request: of requests
// waiting together, those answered in time keep their answer and each of
// the others fails once with ErrTimeout; a request sent after the sweep
// went idle is timed again.
func TestRequest_TimerFSweepFailsOnlyTheUnanswered(t *testing.T) {
	fl := flow.New(&conn{}, nil)
	defer fl.Close()
	fl.SetTimerF(30 * time.Millisecond)
	for round := range 2 {
		xs := []*tx{send(fl), send(fl), send(fl), send(fl)}
		if !fl.HandleAnswer(xs[1].branch, 200) || !fl.HandleAnswer(xs[3].branch, 202) {
			t.Fatalf("round %d: answers in time were stray", round)
		}
		deadline := time.Now().Add(10 * time.Second)
		for fl.Pending() > 0 && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
		want := []outcome{{calls: 1, err: flow.ErrTimeout}, {calls: 1, code: 200}, {calls: 1, err: flow.ErrTimeout}, {calls: 1, code: 202}}
		for i, x := range xs {
			if got := x.outcome(); got != want[i] {
				t.Errorf("round %d: request %d got %+v, want %+v", round, i, got, want[i])
			}
		}
		time.Sleep(40 * time.Millisecond) // the sweep finds nothing waiting and stops
	}
}

package loadgen_test

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/presencehub/presencehub/internal/loadgen"
	"github.com/presencehub/presencehub/server"
	"github.com/presencehub/presencehub/server/auth"
	"github.com/presencehub/presencehub/server/servertest"
)

func tokens(h *servertest.Hub) loadgen.TokenFunc {
	return func(sub string, publisher bool) (string, error) {
		return h.Token(sub, func(c *auth.Claims) {
			if publisher {
				c.Publish = []string{"*"}
			}
		}), nil
	}
}

func TestRun_SmallTopology_EveryCheckPasses(t *testing.T) {
	h := servertest.Start(t, servertest.Options{Configure: func(c *server.Config) { c.RequestsPerSecond = 100000 }})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, rate := range []float64{0, 400} {
		res, err := loadgen.Run(ctx, loadgen.Config{
			Hub: h.WS, Domain: servertest.Domain, Token: tokens(h), HubPID: os.Getpid(), HubHTTP: h.URL,
			Subscribers: 3, SubsPerSocket: 8, Resources: 10, Publishers: 2,
			Duration: 500 * time.Millisecond, Rate: rate, Window: 4,
		})
		if err != nil {
			t.Fatal(err)
		}
		var human, js bytes.Buffer
		res.WriteHuman(&human)
		if err := res.WriteJSON(&js); err != nil {
			t.Fatal(err)
		}
		if !res.OK {
			t.Fatalf("rate %v: run failed:\n%s", rate, human.String())
		}
		// 24 subscriptions over 10 resources, each published in turn: every
		// subscription gets its first NOTIFY and at least one more (the last
		// state of its resource). A NOTIFY per PUBLISH is not promised: while
		// one is unanswered, newer states replace the pending one (a loaded
		// machine coalesces many).
		if res.PublishOK < 10 || res.Notify == 0 || res.Latency.Samples == 0 || res.NotifyTotal < res.Notify+24 || res.NotifyTotal < 2*24 {
			t.Errorf("rate %v: implausible figures:\n%s", rate, human.String())
		}
		// Paced: the generator's own schedule, not the hub's throughput on a
		// busy machine, is what pacing promises — rate × duration sends due
		// (one rounding per publisher), each either sent or skipped because
		// its resource still waited for an answer; never more.
		if rate > 0 {
			want := rate * 0.5
			if s := float64(res.PublishScheduled); s > want || s < want-2 || res.PublishSent+res.PublishBehind != res.PublishScheduled {
				t.Errorf("paced at %v for 0.5 s: %d sends due (want %.0f), %d sent + %d skipped", rate, res.PublishScheduled, want, res.PublishSent, res.PublishBehind)
			}
		} else if res.PublishScheduled != 0 || res.PublishBehind != 0 {
			t.Errorf("unpaced run reports a schedule: %d due, %d skipped", res.PublishScheduled, res.PublishBehind)
		}
		// The hub's /metrics was read before and after publishing.
		if res.HubAllocPerNotify <= 0 || !strings.Contains(js.String(), `"hub_alloc_bytes_per_notify":`) {
			t.Errorf("rate %v: no hub allocation figure from /metrics:\n%s", rate, human.String())
		}
		if !strings.HasPrefix(js.String(), `{"mode":"load"`) || strings.Count(js.String(), "\n") != 1 {
			t.Errorf("JSON line = %s", js.String())
		}
	}
}

func TestRun_RefusedSubscriptions_Fail(t *testing.T) {
	h := servertest.Start(t, servertest.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// Subscriber tokens that may watch nothing: every SUBSCRIBE gets 403.
	tok := func(sub string, publisher bool) (string, error) {
		return h.Token(sub, func(c *auth.Claims) {
			if publisher {
				c.Publish = []string{"*"}
			} else {
				c.Subscribe = []string{"nobody"}
			}
		}), nil
	}
	res, err := loadgen.Run(ctx, loadgen.Config{Hub: h.WS, Domain: servertest.Domain, Token: tok,
		Subscribers: 1, SubsPerSocket: 3, Resources: 3, Publishers: 1, Duration: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if res.OK || res.Checks.SubscribeFailures != 3 || res.Failures["SUBSCRIBE 403"] != 3 {
		t.Fatalf("OK %v checks %+v failures %v", res.OK, res.Checks, res.Failures)
	}
}

func TestRunIdle_InProcess(t *testing.T) {
	h := servertest.Start(t, servertest.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := loadgen.RunIdle(ctx, loadgen.IdleConfig{Hub: h.WS, HubHTTP: h.URL, Domain: servertest.Domain, Token: tokens(h),
		HubPID: os.Getpid(), Sockets: 40, Resources: 7, Settle: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	var human bytes.Buffer
	res.WriteHuman(&human)
	if !res.OK || res.Established != 40 || res.Processes != 1 {
		t.Fatalf("idle run:\n%s", human.String())
	}
	if got := h.Server.Notifier().Count()["dialog"]; got != 40 {
		t.Errorf("hub holds %d dialog subscriptions, want 40", got)
	}
}

func TestRunIdle_MoreThanOneProcessNeedsWorkers(t *testing.T) {
	_, err := loadgen.RunIdle(context.Background(), loadgen.IdleConfig{Hub: "ws://127.0.0.1:1/ws", Domain: "x",
		Token: func(string, bool) (string, error) { return "", nil }, HubPID: os.Getpid(), Sockets: 10, PerProcess: 5})
	if err == nil || !strings.Contains(err.Error(), "worker") {
		t.Fatalf("err = %v", err)
	}
}

package compositor_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/presencehub/presencehub/compositor"
)

func TestSubscribe_RefreshAndSameBody_NoChange(t *testing.T) {
	h := newHarness(t)
	tag := h.mustPublish(presenceReq(300, "t1=open")).ETag
	if got := h.changes(); len(got) != 1 {
		t.Fatalf("initial publish: %d changes, want 1", len(got))
	}
	tag = h.mustPublish(refreshReq("presence", tag, 300)).ETag
	same := presenceReq(300, "t1=open")
	same.IfMatch = []string{tag}
	h.mustPublish(same)
	if got := h.changes(); len(got) != 0 {
		t.Fatalf("refresh and identical modify: %d changes, want 0: %+v", len(got), got)
	}
}

func TestSubscribe_ModifyRemoveClear_EmitChanges(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	var seq []string
	// The feed coalesces: it always emits the newest composed view, so
	// each step waits for its change before the next one.
	collect := func() {
		t.Helper()
		for _, ch := range h.changes() {
			v := ch.View
			switch v.Event {
			case "presence":
				seq = append(seq, "presence:"+v.Presence.Tuples[0].ID+"="+v.Presence.Tuples[0].Basic)
			case "dialog":
				seq = append(seq, "dialog:"+itoa(len(v.Dialogs)))
			}
		}
	}
	tag := h.mustPublish(presenceReq(300, "t1=open")).ETag
	collect()
	mod := presenceReq(300, "t1=closed")
	mod.IfMatch = []string{tag}
	tag = h.mustPublish(mod).ETag
	collect()
	if err := h.c.Remove(ctx, alice, tag); err != nil {
		t.Fatalf("Remove: %v", err)
	}
	collect()
	h.mustPublish(dialogReq(300, "x=early"))
	collect()
	if rs, _ := h.c.Resources(ctx); len(rs) != 1 || rs[0] != alice {
		t.Fatalf("Resources = %v", rs)
	}
	if err := h.c.Clear(ctx); err != nil {
		t.Fatalf("Clear: %v", err)
	}
	collect()
	want := []string{"presence:t1=open", "presence:t1=closed", "presence:none=closed", "dialog:1", "dialog:0"}
	if len(seq) != len(want) {
		t.Fatalf("changes = %v, want %v", seq, want)
	}
	for i := range want {
		if seq[i] != want[i] {
			t.Fatalf("changes = %v, want %v", seq, want)
		}
	}
	if v := h.c.View(alice, "dialog"); len(v.Dialogs) != 0 {
		t.Fatalf("dialog view after Clear = %+v", v.Dialogs)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

func TestSubscribe_SlowCallback_DoesNotBlockPublish(t *testing.T) {
	h := newHarness(t)
	release := make(chan struct{})
	entered := make(chan struct{}, 1)
	cancel := h.c.Subscribe(func(compositor.Change) {
		select {
		case entered <- struct{}{}:
		default:
		}
		<-release
	})
	h.mustPublish(presenceReq(300, "t1=open"))
	<-entered // the feed goroutine is now stuck in the callback
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 20 {
			r := presenceReq(300, "t1=open")
			r.Resource = "sip:" + itoa(i%10) + "x@hub.test"
			r.Body = pidfBody(r.Resource, "t1=open")
			h.mustPublish(r)
		}
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Publish blocked behind a slow subscriber")
	}
	cancel()
	close(release)
}

func TestView_NothingPublished_ClosedAndNoDialogs(t *testing.T) {
	h := newHarness(t)
	p := h.c.View("sip:nobody@hub.test", "presence")
	if p.Rev != 0 || p.Presence == nil || len(p.Presence.Tuples) != 1 || p.Presence.Tuples[0].Basic != "closed" {
		t.Fatalf("presence view = %+v", p)
	}
	if d := h.c.View("sip:nobody@hub.test", "dialog"); len(d.Dialogs) != 0 || d.Presence != nil {
		t.Fatalf("dialog view = %+v", d)
	}
}

func TestView_RenderedOncePerChange_SharedByEveryReader(t *testing.T) {
	h := newHarness(t)
	h.mustPublish(dialogReq(300, "a1=confirmed"))
	h.mustPublish(presenceReq(300, "t1=open"))
	for _, event := range []string{"dialog", "presence"} {
		v1, v2 := h.c.View(alice, event), h.c.View(alice, event)
		b1, at := v1.Template()
		b2, _ := v2.Template()
		if len(b1) == 0 || &b1[0] != &b2[0] {
			t.Fatalf("%s: two readers of one view got two renderings", event)
		}
		if want := (event == "dialog"); (at >= 0) != want {
			t.Fatalf("%s: version slot at %d", event, at)
		}
		if allocs := testing.AllocsPerRun(100, func() { h.c.View(alice, event).Template() }); allocs != 0 {
			t.Fatalf("%s: View+Template allocates %.0f times: renders again", event, allocs)
		}
	}
}

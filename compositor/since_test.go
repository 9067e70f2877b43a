package compositor_test

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/presencehub/presencehub/compositor"
)

// since returns the hub's stamp of dialog id in v (zero: not shown).
func since(v compositor.View, id string) time.Time {
	for _, d := range v.Dialogs {
		if d.ID == id {
			return d.Since
		}
	}
	return time.Time{}
}

func TestSince_StateChangeMovesTheStamp_RefreshAndUnrelatedChangesKeepIt(t *testing.T) {
	h := newHarness(t)
	t0 := h.clk.Now()
	tag := h.mustPublish(dialogReq(300, "a1=early")).ETag
	modify := func(dialogs ...string) {
		r := dialogReq(300, dialogs...)
		r.IfMatch = []string{tag}
		tag = h.mustPublish(r).ETag
	}
	steps := []struct {
		name   string
		do     func()
		a1, b2 time.Time // zero: not shown
	}{
		{"new dialog: stamped now", func() {}, t0, time.Time{}},
		{"refresh 10 s later: kept", func() {
			h.clk.Advance(10 * time.Second)
			tag = h.mustPublish(refreshReq("dialog", tag, 300)).ETag
		}, t0, time.Time{}},
		{"same state republished with another dialog: a1 kept, b2 stamped", func() {
			h.clk.Advance(time.Second)
			modify("a1=early", "b2=trying")
		}, t0, t0.Add(11 * time.Second)},
		{"a1 answered: a1 moves, b2 kept", func() {
			h.clk.Advance(4 * time.Second)
			modify("a1=confirmed", "b2=trying")
		}, t0.Add(15 * time.Second), t0.Add(11 * time.Second)},
		{"another publication repeats a1 confirmed: kept", func() {
			h.clk.Advance(time.Second)
			h.mustPublish(dialogReq(300, "a1=confirmed"))
		}, t0.Add(15 * time.Second), t0.Add(11 * time.Second)},
	}
	for _, s := range steps {
		s.do()
		v := h.c.View(alice, "dialog")
		if got := since(v, "a1"); !got.Equal(s.a1) {
			t.Errorf("%s: a1 since %v, want %v", s.name, got, s.a1)
		}
		if got := since(v, "b2"); !got.Equal(s.b2) {
			t.Errorf("%s: b2 since %v, want %v", s.name, got, s.b2)
		}
	}
}

func TestSince_ReRenderWithoutStateChange_IsByteIdentical(t *testing.T) {
	h := newHarness(t)
	tag := h.mustPublish(dialogReq(300, "a1=confirmed")).ETag
	before := h.c.View(alice, "dialog").AppendXML(nil)
	if !bytes.Contains(before, []byte(`<since xmlns="urn:x-presencehub:dialog">2030-05-06T07:08:09.000Z</since>`)) {
		t.Fatalf("no hub stamp in the served body:\n%s", before)
	}
	h.clk.Advance(30 * time.Second)
	tag = h.mustPublish(refreshReq("dialog", tag, 300)).ETag
	h.clk.Advance(30 * time.Second)
	r := dialogReq(300, "a1=confirmed")
	r.IfMatch = []string{tag}
	h.mustPublish(r)
	if after := h.c.View(alice, "dialog").AppendXML(nil); !bytes.Equal(before, after) {
		t.Fatalf("re-render without a state change differs:\n%s\n---\n%s", before, after)
	}
	for _, ch := range h.changes()[1:] {
		if ch.View.Event == "dialog" {
			t.Fatalf("a refresh and an unchanged modify emitted a change: %s", ch.View.AppendXML(nil))
		}
	}
}

func TestSince_SurvivesHubRestartOnSQLiteFile(t *testing.T) {
	h := newHarness(t)
	t0 := h.clk.Now()
	tag := h.mustPublish(dialogReq(300, "a1=confirmed")).ETag
	h.close()
	h.clk.Advance(time.Minute)
	h.open()
	if got := since(h.c.View(alice, "dialog"), "a1"); !got.Equal(t0) {
		t.Fatalf("after restart a1 since %v, want %v", got, t0)
	}
	// A refresh on the restarted hub keeps it too.
	h.mustPublish(refreshReq("dialog", tag, 300))
	h.close()
	h.open()
	if got := since(h.c.View(alice, "dialog"), "a1"); !got.Equal(t0) {
		t.Fatalf("after refresh and restart a1 since %v, want %v", got, t0)
	}
}

func TestSince_PublisherCannotForgeTheHubStamp(t *testing.T) {
	h := newHarness(t)
	r := dialogReq(300, "a1=confirmed")
	forged := `<since xmlns="urn:x-presencehub:dialog">1999-01-01T00:00:00.000Z</since><ph:since xmlns:ph="urn:x-presencehub:dialog">1999-01-01T00:00:00.000Z</ph:since></dialog>`
	r.Body = []byte(strings.Replace(string(r.Body), "</dialog>", forged, 1))
	if !strings.Contains(string(r.Body), "1999") {
		t.Fatalf("body not forged: %s", r.Body)
	}
	h.mustPublish(r)
	body := string(h.c.View(alice, "dialog").AppendXML(nil))
	if strings.Contains(body, "1999") || strings.Count(body, "<since ") != 1 || !strings.Contains(body, "2030-05-06T07:08:09.000Z") {
		t.Fatalf("served body does not carry exactly the hub's stamp:\n%s", body)
	}
}

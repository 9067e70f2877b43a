package compositor_test

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/presencehub/presencehub/compositor"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata/compositor")

const goldenDir = "../testdata/compositor"

// transcript collects the composed view after each step.
type transcript struct {
	bytes.Buffer
}

func (tr *transcript) step(name string, v compositor.View) {
	fmt.Fprintf(tr, "## %s (event %s)\n", name, v.Event)
	tr.Write(v.AppendXML(nil))
	tr.WriteString("\n")
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join(goldenDir, name)
	if *update {
		if err := os.MkdirAll(goldenDir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden (run with -update to create): %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s differs from golden file (run with -update after checking):\n--- got\n%s\n--- want\n%s", name, got, want)
	}
}

const deskPIDF = `<?xml version="1.0" encoding="UTF-8"?>
<presence xmlns="urn:ietf:params:xml:ns:pidf" xmlns:dm="urn:ietf:params:xml:ns:pidf:data-model"
  xmlns:rp="urn:ietf:params:xml:ns:pidf:rpid" entity="sip:1001@hub.test">
  <tuple id="desk"><status><basic>open</basic></status><contact priority="0.8">sip:1001@desk.invalid</contact>
    <note xml:lang="en">At my desk &amp; ready</note><timestamp>2030-05-06T07:08:09Z</timestamp></tuple>
  <dm:person id="p1"><rp:activities><rp:busy/></rp:activities><dm:note>In a "meeting"</dm:note></dm:person>
  <note>Desk phone</note>
</presence>`

const mobilePIDF = `<?xml version="1.0" encoding="UTF-8"?>
<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:1001@hub.test">
  <tuple id="mobile"><status><basic>closed</basic></status><contact>sip:1001@mobile.invalid</contact></tuple>
</presence>`

func TestCompose_TwoDevicesOfOneUser_Golden(t *testing.T) {
	h := newHarness(t)
	var tr transcript
	desk := presenceReq(300)
	desk.Body = []byte(deskPIDF)
	deskTag := h.mustPublish(desk).ETag
	tr.step("desk publishes open with a person (RPID busy) and notes", h.c.View(alice, "presence"))
	mobile := presenceReq(300)
	mobile.Body = []byte(mobilePIDF)
	mobileTag := h.mustPublish(mobile).ETag
	tr.step("mobile publishes closed: tuples united", h.c.View(alice, "presence"))
	h.clk.Advance(time.Second)
	mod := presenceReq(300, "mobile=open")
	mod.IfMatch = []string{mobileTag}
	h.mustPublish(mod)
	tr.step("mobile modifies to open: same tuple id, newest wins", h.c.View(alice, "presence"))

	d1 := dialogReq(300, "desk-call=confirmed")
	h.mustPublish(d1)
	d2 := dialogReq(300, "mobile-call=early")
	h.mustPublish(d2)
	tr.step("each device publishes one dialog: dialogs united", h.c.View(alice, "dialog"))
	h.mustPublish(refreshReq("presence", deskTag, 0))
	tr.step("desk unpublishes presence", h.c.View(alice, "presence"))
	golden(t, "two_devices.golden", tr.Bytes())
}

func TestCompose_EarlyAfterTerminated_StaysTerminated_Golden(t *testing.T) {
	h := newHarness(t)
	var tr transcript
	tag := h.mustPublish(dialogReq(300, "a1=confirmed", "b2=early")).ETag
	tr.step("a1 confirmed, b2 early", h.c.View(alice, "dialog"))
	modify := func(dialogs ...string) {
		h.clk.Advance(time.Second)
		r := dialogReq(300, dialogs...)
		r.IfMatch = []string{tag}
		tag = h.mustPublish(r).ETag
	}
	modify("a1=terminated", "b2=early")
	tr.step("a1 terminated", h.c.View(alice, "dialog"))
	modify("a1=early", "b2=early")
	tr.step("late a1 early on the same publication: ignored", h.c.View(alice, "dialog"))
	h.clk.Advance(time.Second)
	h.mustPublish(dialogReq(300, "a1=proceeding"))
	tr.step("late a1 proceeding from another publication: ignored", h.c.View(alice, "dialog"))

	// The tombstone travels inside the publications: it survives a restart.
	h.close()
	h.open()
	tr.step("after restart", h.c.View(alice, "dialog"))
	h.clk.Advance(time.Second)
	h.mustPublish(dialogReq(300, "a1=confirmed"))
	tr.step("late a1 confirmed after restart: ignored", h.c.View(alice, "dialog"))
	modify("b2=terminated")
	tr.step("b2 terminated", h.c.View(alice, "dialog"))
	golden(t, "early_after_terminated.golden", tr.Bytes())
}

func TestCompose_ExpiryOfOneOfTwo_Golden(t *testing.T) {
	h := newHarness(t)
	var tr transcript
	h.mustPublish(presenceReq(60, "short=open"))
	h.mustPublish(presenceReq(120, "long=open"))
	tr.step("two publications (60 s and 120 s)", h.c.View(alice, "presence"))
	h.clk.Advance(90 * time.Second)
	if n, err := h.store.Expire(context.Background()); err != nil || n != 1 {
		t.Fatalf("store Expire = %d, %v; want 1", n, err)
	}
	v := h.waitChange("presence", func(v compositor.View) bool {
		return v.Resource == alice && len(v.Presence.Tuples) == 1 && v.Presence.Tuples[0].ID == "long"
	})
	tr.step("after 90 s the 60 s publication expired (change from the store)", v)
	h.clk.Advance(60 * time.Second)
	if _, err := h.store.Expire(context.Background()); err != nil {
		t.Fatalf("store Expire: %v", err)
	}
	v = h.waitChange("presence", func(v compositor.View) bool {
		return v.Resource == alice && v.Presence.Tuples[0].ID == "none"
	})
	tr.step("after 150 s both expired: closed", v)
	golden(t, "expiry_one_of_two.golden", tr.Bytes())
}

package main

import (
	"context"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/emiago/sipgo/sip"
	"github.com/presencehub/presencehub/compositor/dialoginfo"
	"github.com/presencehub/presencehub/internal/sipclient"
	"golang.org/x/sys/unix"
)

// A full disk (the hub's file-size limit lowered under it, so every write of
// the real SQLite file fails with EFBIG): PUBLISH is refused with 500/503,
// /readyz says so, nothing half-written stays, and the hub recovers by
// itself when the fault clears.
func TestStoreFault_DiskFull_RefusesThenRecovers(t *testing.T) {
	db := filepath.Join(t.TempDir(), "fault.db")
	h := startHub(t, "PRESENCEHUB_DB="+db)
	ctx := context.Background()
	cl, err := sipclient.Dial(ctx, "ws://"+h.addr+"/ws", sipclient.Options{Token: mint(t, "1001", nil)})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	a := aor("1001")
	publish := func(etag, state string) *sip.Response {
		t.Helper()
		req, _ := cl.NewRequest(sip.PUBLISH, a, a)
		req.AppendHeader(sip.NewHeader("Event", "dialog"))
		if etag != "" {
			req.AppendHeader(sip.NewHeader("SIP-If-Match", etag))
		}
		if state != "" {
			doc := dialoginfo.Document{State: "full", Entity: a, Dialogs: []dialoginfo.Dialog{{ID: "d", State: state}}}
			ct := sip.ContentTypeHeader("application/dialog-info+xml")
			req.AppendHeader(&ct)
			req.SetBody(doc.AppendXML(nil))
		}
		res, err := cl.Do(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	ready := func() int {
		res, err := http.Get("http://" + h.addr + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	res := publish("", "early")
	if res.StatusCode != 200 {
		t.Fatalf("before the fault: %d", res.StatusCode)
	}
	etag := res.GetHeader("SIP-ETag").Value()

	pid := h.cmd.Process.Pid
	var old unix.Rlimit
	if err := unix.Prlimit(pid, unix.RLIMIT_FSIZE, &unix.Rlimit{Cur: 1, Max: unix.RLIM_INFINITY}, &old); err != nil {
		t.Skipf("cannot lower the hub's file-size limit: %v", err)
	}
	for i := 0; i < 3; i++ {
		res = publish(etag, "confirmed")
		if res.StatusCode != 500 && res.StatusCode != 503 {
			t.Fatalf("with the disk full: %d %s, want 500 or 503", res.StatusCode, res.Reason)
		}
	}
	if res.StatusCode == 503 && res.GetHeader("Retry-After") == nil {
		t.Error("503 without Retry-After")
	}
	if code := ready(); code != http.StatusServiceUnavailable {
		t.Errorf("/readyz with the disk full: %d, want 503", code)
	}
	// The container's health check says the hub cannot serve.
	if code, _, stderr := runBinary(t, t.TempDir(), []string{"PRESENCEHUB_HTTP_ADDR=" + h.addr}, "healthcheck"); code != 1 || !strings.Contains(stderr, "not serving") || !strings.Contains(stderr, "store") {
		t.Errorf("healthcheck with the disk full: exit %d %s", code, stderr)
	}

	if err := unix.Prlimit(pid, unix.RLIMIT_FSIZE, &old, nil); err != nil {
		t.Fatal(err)
	}
	// The failed modify changed nothing: the old entity-tag still works.
	res = publish(etag, "confirmed")
	if res.StatusCode != 200 {
		t.Fatalf("after the fault cleared: %d %s", res.StatusCode, res.Reason)
	}
	if code := ready(); code != http.StatusOK {
		t.Errorf("/readyz after recovery: %d", code)
	}
	if code, stdout, stderr := runBinary(t, t.TempDir(), []string{"PRESENCEHUB_HTTP_ADDR=" + h.addr}, "healthcheck"); code != 0 || stdout != "serving\n" {
		t.Errorf("healthcheck after recovery: exit %d %q %s", code, stdout, stderr)
	}
}

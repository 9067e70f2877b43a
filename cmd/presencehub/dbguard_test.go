package main

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// Two hubs on one database file: the second does not start. It exits 1
// with an error naming the file, the first hub's pid and the rule, and the
// first keeps serving. Once the first is gone (kill -9 included), the file
// is free again.
func TestDBLock_SecondHubOnOneFileRefusedAtStart(t *testing.T) {
	db := filepath.Join(t.TempDir(), "one.db")
	first := startHub(t, "PRESENCEHUB_DB="+db)
	env := []string{"PRESENCEHUB_DB=" + db, "PRESENCEHUB_HTTP_ADDR=127.0.0.1:0", "PRESENCEHUB_DOMAIN=" + testDomain,
		"PRESENCEHUB_JWT_SECRET=" + testSecret, "PRESENCEHUB_LOG_FORMAT=json"}
	code, _, stderr := runBinary(t, t.TempDir(), env)
	for _, want := range []string{db, "in use by another process", "process " + strconv.Itoa(first.cmd.Process.Pid), "one hub per database file"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("second hub's error lacks %q:\n%s", want, stderr)
		}
	}
	if code != 1 {
		t.Errorf("second hub: exit %d, want 1", code)
	}
	if res, err := http.Get("http://" + first.addr + "/readyz"); err != nil || res.StatusCode != 200 {
		t.Fatalf("first hub after the second tried: %v %v", res, err)
	}
	_ = first.cmd.Process.Kill()
	<-first.exited
	startHub(t, "PRESENCEHUB_DB="+db) // starts (waits for "presencehub serving")
}

// A database with a damaged page: the hub starts (start-up reads no page it
// does not need), its background check finds the damage, logs why, and
// /readyz and the container health check say so before any PUBLISH meets it.
func TestDamagedDB_ReadyzSaysSoAndLogsWhy(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "damaged.db")
	if _, err := fillDB(context.Background(), db, testDomain, 2000, io.Discard); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(db + "-wal"); err == nil {
		t.Fatalf("the WAL outlived Close; the damage would be repaired from it")
	}
	f, err := os.OpenFile(db, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	fi, _ := f.Stat()
	const page = 4096
	pages := fi.Size() / page
	if pages < 8 {
		t.Fatalf("only %d pages", pages)
	}
	garbage := []byte(strings.Repeat("\xde\xad\xbe\xef", page/4))
	if _, err := f.WriteAt(garbage, (pages/2)*page); err != nil { // one page in the middle of the tables
		t.Fatal(err)
	}
	f.Close()

	h := startHub(t, "PRESENCEHUB_DB="+db)
	line := h.waitLog("database damaged")
	if e, _ := line["err"].(string); !strings.Contains(e, "quick_check") {
		t.Errorf("the log line does not say why: %v", line)
	}
	res, err := http.Get("http://" + h.addr + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), "damaged") {
		t.Fatalf("/readyz on a damaged database: %d %s", res.StatusCode, body)
	}
	if code, _, stderr := runBinary(t, t.TempDir(), []string{"PRESENCEHUB_HTTP_ADDR=" + h.addr}, "healthcheck"); code != 1 || !strings.Contains(stderr, "damaged") {
		t.Errorf("healthcheck on a damaged database: exit %d %s", code, stderr)
	}

}

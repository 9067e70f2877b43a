package compositor_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/presencehub/presencehub/compositor"
	"github.com/presencehub/presencehub/compositor/store/sqlitestore"
)

const crashEnv = "PRESENCEHUB_CRASH_CHILD_DB"

// TestCrashChild is the child process of TestCrash_KillDuringPublishes: it
// publishes until killed and prints each acknowledged ETag.
func TestCrashChild(t *testing.T) {
	path := os.Getenv(crashEnv)
	if path == "" {
		t.Skip("child of TestCrash_KillDuringPublishes only")
	}
	ctx := context.Background()
	s, err := sqlitestore.Open(ctx, path, sqlitestore.Options{})
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	c, err := compositor.New(ctx, compositor.Config{Store: s})
	if err != nil {
		t.Fatalf("new: %v", err)
	}
	out := bufio.NewWriter(os.Stdout)
	prev := ""
	for i := 0; ; i++ {
		res := fmt.Sprintf("sip:u%d@hub.test", i)
		r := compositor.PublishRequest{Resource: res, Event: "presence", Expires: 3600,
			ContentType: "application/pidf+xml", Body: pidfBody(res, "t=open")}
		if i%3 == 2 { // every third: refresh the previous publication
			res = fmt.Sprintf("sip:u%d@hub.test", i-1)
			r = compositor.PublishRequest{Resource: res, Event: "presence", Expires: 3600, IfMatch: []string{prev}}
		}
		fmt.Fprintf(out, "TRY %s\n", res)
		out.Flush()
		got, err := c.Publish(ctx, r)
		if err != nil {
			t.Fatalf("publish %d: %v", i, err)
		}
		prev = got.ETag
		// Printed only after Publish returned: this line is the 200.
		fmt.Fprintf(out, "ACK %s %s\n", res, got.ETag)
		out.Flush()
	}
}

func TestCrash_KillDuringPublishes_AckedETagsSurvive(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns a child process")
	}
	path := filepath.Join(t.TempDir(), "crash.db")
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashEnv+"="+path)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	const killAfter = 300
	latest := map[string]string{}
	acks := 0
	sc := bufio.NewScanner(stdout)
	killed := false
	timeout := time.AfterFunc(30*time.Second, func() { cmd.Process.Kill() })
	defer timeout.Stop()
	inflight := "" // a PUBLISH may commit and be killed before its 200
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 2 && f[0] == "TRY" {
			inflight = f[1]
			continue
		}
		if len(f) != 3 || f[0] != "ACK" {
			continue // test framework noise
		}
		inflight = ""
		latest[f[1]] = f[2]
		acks++
		if acks == killAfter && !killed {
			killed = true
			if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatalf("kill: %v", err)
			}
		}
	}
	cmd.Wait()
	if !killed {
		t.Fatalf("child ended after %d acks without being killed", acks)
	}
	t.Logf("%d PUBLISHes acknowledged before SIGKILL, %d publications", acks, len(latest))

	ctx := context.Background()
	s, err := sqlitestore.Open(ctx, path, sqlitestore.Options{})
	if err != nil {
		t.Fatalf("reopen after kill: %v", err)
	}
	defer s.Close()
	c, err := compositor.New(ctx, compositor.Config{Store: s})
	if err != nil {
		t.Fatalf("compositor after kill: %v", err)
	}
	defer c.Close()
	for res, etag := range latest {
		if _, err := c.Find(ctx, res, etag); err != nil {
			ps, _ := c.List(ctx, res)
			if res == inflight && len(ps) == 1 {
				// The unanswered refresh committed: the state is newer
				// than the acked one, and nothing acked was lost.
				etag = ps[0].ETag
			} else {
				t.Errorf("acked %s ETag %s lost: %v (stored: %+v)", res, etag, err, ps)
				continue
			}
		}
		if _, err := c.Publish(ctx, compositor.PublishRequest{Resource: res, Event: "presence", Expires: 60, IfMatch: []string{etag}}); err != nil {
			t.Errorf("refresh of acked %s after restart: %v", res, err)
		}
	}
}

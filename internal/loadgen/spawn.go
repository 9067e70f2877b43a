package loadgen

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// SpawnOptions say how to start a hub child process.
type SpawnOptions struct {
	// Exe is the presencehub binary; "" is this process's own executable.
	Exe string
	// Secret is the HS256 secret the hub verifies tokens with (passed in
	// the environment, not on the command line).
	Secret string
	// Domain is the hub's SIP domain.
	Domain string
	// Args are extra serve flags (e.g. -cpuprofile FILE).
	Args []string
	// Log receives the hub's log lines after start-up; nil discards them.
	Log io.Writer
	// DB is an existing database for the hub (kept by Stop); "" is a new
	// one in the hub's temporary directory.
	DB string
	// StartTimeout bounds waiting for the hub; default 30 s.
	StartTimeout time.Duration
	// Listening makes Spawn return as soon as the hub listens (it answers
	// /healthz, and /readyz once it is ready) instead of once it serves.
	Listening bool
}

// Hub is a hub child process started by Spawn.
type Hub struct {
	WS  string // ws://127.0.0.1:port/ws
	URL string // http://127.0.0.1:port
	PID int
	Dir string // temporary directory (with its database unless SpawnOptions.DB); removed by Stop
	// Started is when the process was started (start-up times count from it).
	Started time.Time
	cmd     *exec.Cmd
	logs    chan struct{} // closed when the log copier ends
}

// Spawn starts `presencehub serve` on a random 127.0.0.1 port with a
// SQLite database in a new temporary directory, and returns once it
// listens, with default flags: the generator's publisher tokens may
// publish for every AOR, so the hub's publisher request limit applies to
// their sockets, not the browser limit. Stop ends it.
func Spawn(ctx context.Context, opts SpawnOptions) (*Hub, error) {
	exe := opts.Exe
	if exe == "" {
		var err error
		if exe, err = os.Executable(); err != nil {
			return nil, fmt.Errorf("loadgen: find own executable: %w", err)
		}
	}
	dir, err := os.MkdirTemp("", "presencehub-bench-")
	if err != nil {
		return nil, fmt.Errorf("loadgen: temp dir: %w", err)
	}
	db := opts.DB
	if db == "" {
		db = filepath.Join(dir, "presencehub.db")
	}
	args := append([]string{"serve",
		"-http-addr", "127.0.0.1:0",
		"-db", db,
		"-domain", opts.Domain,
		"-log-format", "json",
		"-log-level", "info",
	}, opts.Args...)
	cmd := exec.Command(exe, args...)
	cmd.Env = append(hubEnv(os.Environ()), "PRESENCEHUB_JWT_SECRET="+opts.Secret)
	cmd.Dir = dir
	stderr, err := cmd.StderrPipe()
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("loadgen: hub stderr: %w", err)
	}
	started := time.Now()
	if err := cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("loadgen: start hub %s: %w", exe, err)
	}
	h := &Hub{PID: cmd.Process.Pid, Dir: dir, Started: started, cmd: cmd, logs: make(chan struct{})}
	addr := make(chan string, 1)
	want := "presencehub serving"
	if opts.Listening {
		want = "presencehub listening"
	}
	go h.copyLogs(stderr, want, addr, opts.Log)
	timeout := opts.StartTimeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	select {
	case a, ok := <-addr:
		if ok {
			h.URL = "http://" + a
			h.WS = "ws://" + a + "/ws"
			return h, nil
		}
		err = errors.New("loadgen: hub exited before listening")
	case <-ctx.Done():
		err = fmt.Errorf("loadgen: hub did not start: %w", ctx.Err())
	}
	_ = h.Stop(5 * time.Second)
	return nil, err
}

// hubEnv drops PRESENCEHUB_* settings of the caller: the child is
// configured by its command line only.
func hubEnv(env []string) []string {
	out := env[:0:0]
	for _, kv := range env {
		if !strings.HasPrefix(kv, "PRESENCEHUB_") {
			out = append(out, kv)
		}
	}
	return out
}

// copyLogs finds the log line whose message is want ("presencehub
// serving"), sends its address, and copies the rest to w. It ends when the
// hub closes stderr.
func (h *Hub) copyLogs(r io.Reader, want string, addr chan<- string, w io.Writer) {
	defer close(h.logs)
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	found := false
	for sc.Scan() {
		line := sc.Bytes()
		if !found {
			var rec struct {
				Msg  string `json:"msg"`
				Addr string `json:"addr"`
			}
			if json.Unmarshal(line, &rec) == nil && rec.Msg == want && rec.Addr != "" {
				found = true
				addr <- rec.Addr
				continue
			}
		}
		if w != nil {
			fmt.Fprintf(w, "hub: %s\n", line)
		}
	}
	if !found {
		close(addr)
	}
	_, _ = io.Copy(io.Discard, r)
}

// Stop asks the hub to shut down (SIGTERM: final NOTIFYs, clean store
// close), kills it after timeout, and removes its directory.
func (h *Hub) Stop(timeout time.Duration) error {
	defer os.RemoveAll(h.Dir)
	_ = h.cmd.Process.Signal(syscall.SIGTERM)
	waited := make(chan error, 1)
	go func() {
		<-h.logs // Wait closes the pipe: read it to its end first
		waited <- h.cmd.Wait()
	}()
	var err error
	select {
	case err = <-waited:
	case <-time.After(timeout):
		_ = h.cmd.Process.Kill()
		err = fmt.Errorf("loadgen: hub did not stop within %v: killed", timeout)
		<-waited
	}
	return err
}

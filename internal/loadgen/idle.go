package loadgen

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"
)

// IdleConfig describes an idle-scale run (RunIdle): sockets that each hold
// one dialog subscription and then stay quiet.
type IdleConfig struct {
	Hub     string    // hub WebSocket URL
	HubHTTP string    // hub base URL for /metrics (heap figures); "" skips them
	Domain  string    // the hub's SIP domain
	Token   TokenFunc // required
	HubPID  int       // hub process whose RSS is measured; required by RunIdle

	Sockets int // N
	// SubsPerSocket is how many dialog subscriptions each socket holds
	// (default 1); socket n's k-th watches resource (n·K+k) mod Resources.
	SubsPerSocket int
	Resources     int // watched AORs; default 1000
	// PerProcess is the most sockets one process holds (its descriptor
	// limit minus a margin); sockets beyond it go to worker processes.
	PerProcess int
	// Worker starts a worker process that holds count sockets numbered from
	// offset (it runs IdleWorker); nil keeps every socket in this process.
	Worker func(offset, count int) *exec.Cmd
	// Settle is how long to wait once every socket is subscribed before
	// reading the hub's memory; default 5 s.
	Settle time.Duration
	// Concurrency is how many handshakes are in flight; default 64.
	Concurrency int
	// Hold, when set, runs after the measurement while every socket is
	// still held (say, to make the hub write a heap profile).
	Hold     func()
	Prefix   string    // resource user prefix; default "idle"
	Progress io.Writer // progress lines; nil: none
}

func (c *IdleConfig) defaults() error {
	if c.Hub == "" || c.Domain == "" || c.Token == nil {
		return errors.New("loadgen: Hub, Domain and Token are required")
	}
	if c.Sockets <= 0 || c.Sockets > 200_000 {
		return errors.New("loadgen: idle sockets must be in [1, 200000]")
	}
	if c.Resources <= 0 {
		c.Resources = 1000
	}
	if c.SubsPerSocket <= 0 {
		c.SubsPerSocket = 1
	}
	if c.SubsPerSocket > 10000 {
		return errors.New("loadgen: at most 10000 subscriptions per idle socket")
	}
	if c.PerProcess <= 0 {
		c.PerProcess = c.Sockets
	}
	if c.Settle <= 0 {
		c.Settle = 5 * time.Second
	}
	if c.Concurrency <= 0 {
		c.Concurrency = 64
	}
	if c.Prefix == "" {
		c.Prefix = "idle"
	}
	return nil
}

// IdleResult is what an idle run measured.
type IdleResult struct {
	Mode          string  `json:"mode"` // "idle"
	Hub           string  `json:"hub"`
	Sockets       int     `json:"sockets"`
	SubsPerSocket int     `json:"subscriptions_per_socket"`
	Established   int     `json:"established"` // sockets with their 200s and first NOTIFYs
	Processes     int     `json:"generator_processes"`
	SetupS        float64 `json:"setup_s"`
	SetupPerS     float64 `json:"sockets_per_s"` // connect + SUBSCRIBE + first NOTIFY

	HubPID          int     `json:"hub_pid"`
	HubRSSBeforeMiB float64 `json:"hub_rss_before_mib"`
	HubRSSAfterMiB  float64 `json:"hub_rss_after_mib"`
	BytesPerSocket  float64 `json:"hub_bytes_per_socket"` // (RSS after − RSS before) / established
	KiBPerSocket    float64 `json:"hub_kib_per_socket"`
	// BytesPerSub is (RSS after − RSS before) / (established × subscriptions per socket).
	BytesPerSub float64 `json:"hub_bytes_per_subscription"`
	HubFDs      int     `json:"hub_fds"`
	HubThreads  int     `json:"hub_threads"`
	// From the hub's /metrics (Go runtime), per established socket.
	HeapInusePerSocket  float64 `json:"hub_heap_inuse_bytes_per_socket,omitempty"`
	StackInusePerSocket float64 `json:"hub_stack_inuse_bytes_per_socket,omitempty"`
	GoroutinesPerSocket float64 `json:"hub_goroutines_per_socket,omitempty"`

	Load1 float64  `json:"load1"`
	OK    bool     `json:"ok"`
	Error []string `json:"problems,omitempty"`
}

// WriteHuman writes the result as readable lines.
func (r *IdleResult) WriteHuman(w io.Writer) {
	fmt.Fprintf(w, "idle        %d of %d sockets connected, %d subscriptions each, holding (%d generator processes); set up in %.1fs (%.0f sockets/s)\n",
		r.Established, r.Sockets, r.SubsPerSocket, r.Processes, r.SetupS, r.SetupPerS)
	fmt.Fprintf(w, "hub         pid %d: RSS %.1f MiB before, %.1f MiB after: %.0f bytes = %.1f KiB per socket, %.0f bytes per subscription; %d fds, %d threads\n",
		r.HubPID, r.HubRSSBeforeMiB, r.HubRSSAfterMiB, r.BytesPerSocket, r.KiBPerSocket, r.BytesPerSub, r.HubFDs, r.HubThreads)
	if r.HeapInusePerSocket > 0 {
		fmt.Fprintf(w, "hub Go      per socket: heap in use %.0f bytes, goroutine stacks %.0f bytes, %.1f goroutines\n",
			r.HeapInusePerSocket, r.StackInusePerSocket, r.GoroutinesPerSocket)
	}
	verdict := "PASS"
	if !r.OK {
		verdict = "FAIL: " + strings.Join(r.Error, "; ")
	}
	fmt.Fprintf(w, "result      %s (load average %.2f)\n", verdict, r.Load1)
}

// WriteJSON writes the result as one JSON line.
func (r *IdleResult) WriteJSON(w io.Writer) error { return writeJSONLine(w, r) }

// RunIdle measures the hub's memory per idle subscribed socket.
func RunIdle(ctx context.Context, cfg IdleConfig) (*IdleResult, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	if cfg.HubPID <= 0 {
		return nil, errors.New("loadgen: idle run needs the hub's pid (spawn the hub, or give its pid)")
	}
	res := &IdleResult{Mode: "idle", Hub: cfg.Hub, Sockets: cfg.Sockets, SubsPerSocket: cfg.SubsPerSocket, HubPID: cfg.HubPID}
	// The hub's first /metrics answer sets up its gzip writer and
	// collectors (about 1 MiB that stays): scrape once before reading the
	// RSS, so that what follows is the sockets' and subscriptions' cost
	// and not the measurement's.
	scrapeRuntime(cfg.HubHTTP)
	before, err := readProc(cfg.HubPID)
	if err != nil {
		return nil, err
	}
	memBefore := scrapeRuntime(cfg.HubHTTP)
	res.HubRSSBeforeMiB = mib(before.rssBytes)
	// Split evenly over as few processes as the per-process limit allows.
	procs := (cfg.Sockets + cfg.PerProcess - 1) / cfg.PerProcess
	per := (cfg.Sockets + procs - 1) / procs
	local := min(cfg.Sockets, per)
	if local < cfg.Sockets && cfg.Worker == nil {
		return nil, fmt.Errorf("loadgen: %d sockets exceed %d per process and no worker processes can be started", cfg.Sockets, cfg.PerProcess)
	}
	run := randToken(5)
	t0 := time.Now()
	var (
		mu      sync.Mutex
		group   *idleGroup
		workers []*idleWorkerProc
		errs    []error
		wg      sync.WaitGroup
	)
	wg.Go(func() {
		g, err := holdSockets(ctx, cfg, run, 0, local)
		mu.Lock()
		group = g
		errs = append(errs, err)
		mu.Unlock()
	})
	for off := local; off < cfg.Sockets; off += per {
		n := min(per, cfg.Sockets-off)
		wg.Go(func() {
			w, err := startIdleWorker(ctx, cfg.Worker(off, n), run)
			mu.Lock()
			if w != nil {
				workers = append(workers, w)
			}
			errs = append(errs, err)
			mu.Unlock()
		})
	}
	wg.Wait()
	res.Processes = 1 + len(workers)
	defer func() {
		if group != nil {
			group.close()
		}
		for _, w := range workers {
			w.stop()
		}
	}()
	res.SetupS = time.Since(t0).Seconds()
	if group != nil {
		res.Established += int(group.ready.Load())
	}
	for _, w := range workers {
		res.Established += w.ready
	}
	res.SetupPerS = float64(res.Established) / res.SetupS
	if cfg.Progress != nil {
		fmt.Fprintf(cfg.Progress, "%d of %d sockets subscribed in %.1fs; settling %v\n", res.Established, cfg.Sockets, res.SetupS, cfg.Settle)
	}
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-time.After(cfg.Settle):
	}
	after, err := readProc(cfg.HubPID)
	if err != nil {
		return nil, err
	}
	memAfter := scrapeRuntime(cfg.HubHTTP)
	res.HubRSSAfterMiB = mib(after.rssBytes)
	res.HubFDs = openFiles(cfg.HubPID)
	res.HubThreads = after.threads
	if res.Established > 0 {
		n := float64(res.Established)
		res.BytesPerSocket = float64(after.rssBytes-before.rssBytes) / n
		res.KiBPerSocket = res.BytesPerSocket / 1024
		res.BytesPerSub = res.BytesPerSocket / float64(cfg.SubsPerSocket)
		if memBefore != nil && memAfter != nil {
			res.HeapInusePerSocket = (memAfter["go_memstats_heap_inuse_bytes"] - memBefore["go_memstats_heap_inuse_bytes"]) / n
			res.StackInusePerSocket = (memAfter["go_memstats_stack_inuse_bytes"] - memBefore["go_memstats_stack_inuse_bytes"]) / n
			res.GoroutinesPerSocket = (memAfter["go_goroutines"] - memBefore["go_goroutines"]) / n
		}
	}
	res.Load1 = readMachine().load1
	for _, err := range errs {
		if err != nil {
			res.Error = append(res.Error, err.Error())
		}
	}
	if res.Established < cfg.Sockets {
		res.Error = append(res.Error, fmt.Sprintf("%d sockets not established", cfg.Sockets-res.Established))
	}
	res.OK = len(res.Error) == 0
	if cfg.Hold != nil {
		cfg.Hold()
	}
	return res, nil
}

// idleGroup is a set of idle sockets held by this process.
type idleGroup struct {
	socks  []*wsConn
	ready  atomic.Int64
	failed atomic.Int64
}

type idleSocket struct {
	g        *idleGroup
	sock     *wsConn
	want     int // subscriptions
	mu       sync.Mutex
	accepted int // 2xx to its SUBSCRIBEs
	notified int // NOTIFYs (each subscription's first: nothing changes while idle)
}

func (s *idleSocket) handle(msg []byte) {
	var m message
	if !parseMessage(msg, &m) {
		return
	}
	if m.request {
		s.sock.queue(appendOK(nil, &m))
		if string(m.method) != "NOTIFY" {
			return
		}
	} else if m.status < 200 {
		return
	} else if m.status >= 300 {
		s.g.failed.Add(1)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	was := s.accepted >= s.want && s.notified >= s.want
	if m.request {
		s.notified++
	} else {
		s.accepted++
	}
	if !was && s.accepted >= s.want && s.notified >= s.want {
		s.g.ready.Add(1)
	}
}

// holdSockets connects count sockets numbered from offset, each subscribing
// to one resource, and waits (bounded) until each has its 200 and first NOTIFY.
func holdSockets(ctx context.Context, cfg IdleConfig, run string, offset, count int) (*idleGroup, error) {
	g := &idleGroup{socks: make([]*wsConn, count)}
	eg, ectx := errgroup.WithContext(ctx)
	eg.SetLimit(cfg.Concurrency)
	var dialErr atomic.Value
	for i := range count {
		eg.Go(func() error {
			n := offset + i
			user := "idle-" + strconv.Itoa(n)
			tok, err := cfg.Token(user, false)
			if err != nil {
				return err
			}
			sock, err := dialSocket(ectx, cfg.Hub, tok, n, idleReadBuf)
			if err != nil {
				g.failed.Add(1)
				dialErr.CompareAndSwap(nil, err)
				return nil
			}
			is := &idleSocket{g: g, sock: sock, want: cfg.SubsPerSocket}
			sock.serve(is.handle)
			g.socks[i] = sock
			u := newUA(cfg.Domain, user)
			for k := range cfg.SubsPerSocket {
				resource := cfg.Prefix + run + "-" + strconv.Itoa((n*cfg.SubsPerSocket+k)%cfg.Resources)
				if err := sock.send(u.appendSubscribe(nil, resource, run+"-i-"+strconv.Itoa(n)+"-"+strconv.Itoa(k), 3600)); err != nil {
					g.failed.Add(1)
					break
				}
			}
			return nil
		})
	}
	if err := eg.Wait(); err != nil {
		g.close()
		return nil, err
	}
	waitFor(ctx, 30*time.Second+time.Duration(count*cfg.SubsPerSocket)*time.Millisecond, func() bool {
		return g.ready.Load()+g.failed.Load() >= int64(count)
	})
	if err, _ := dialErr.Load().(error); err != nil {
		return g, fmt.Errorf("%d sockets failed, first: %w", g.failed.Load(), err)
	}
	if n := g.failed.Load(); n > 0 {
		return g, fmt.Errorf("%d sockets failed", n)
	}
	return g, nil
}

func (g *idleGroup) close() {
	var wg sync.WaitGroup
	sem := make(chan struct{}, 256)
	for _, s := range g.socks {
		if s == nil {
			continue
		}
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			s.close()
		})
	}
	wg.Wait()
}

// IdleWorker holds count idle sockets numbered from offset for a parent
// RunIdle: it prints "ready <established> <failed>" on out once they are
// subscribed, holds them until in reaches EOF (or ctx ends), then closes
// them. run names the resources (the parent's run id, from its command).
func IdleWorker(ctx context.Context, cfg IdleConfig, run string, offset, count int, in io.Reader, out io.Writer) error {
	cfg.Sockets = count
	if err := cfg.defaults(); err != nil {
		return err
	}
	g, err := holdSockets(ctx, cfg, run, offset, count)
	if g == nil {
		return err
	}
	defer g.close()
	fmt.Fprintf(out, "ready %d %d\n", g.ready.Load(), g.failed.Load())
	eof := make(chan struct{})
	go func() { _, _ = io.Copy(io.Discard, in); close(eof) }()
	select {
	case <-eof:
	case <-ctx.Done():
	}
	return nil
}

// idleWorkerProc is a running worker process.
type idleWorkerProc struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	ready int
}

// IdleRunEnv is the environment variable that gives a worker its parent's run id.
const IdleRunEnv = "PRESENCEHUB_BENCH_RUN"

func startIdleWorker(ctx context.Context, cmd *exec.Cmd, run string) (*idleWorkerProc, error) {
	cmd.Env = append(cmd.Env, IdleRunEnv+"="+run)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("loadgen: start idle worker: %w", err)
	}
	w := &idleWorkerProc{cmd: cmd, stdin: stdin}
	line := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		if sc.Scan() {
			line <- sc.Text()
		} else {
			line <- ""
		}
		_, _ = io.Copy(io.Discard, stdout)
	}()
	select {
	case l := <-line:
		f := strings.Fields(l)
		if len(f) != 3 || f[0] != "ready" {
			w.stop()
			return nil, fmt.Errorf("loadgen: idle worker said %q", l)
		}
		w.ready, _ = strconv.Atoi(f[1])
		if failed, _ := strconv.Atoi(f[2]); failed > 0 {
			return w, fmt.Errorf("loadgen: idle worker: %d sockets failed", failed)
		}
		return w, nil
	case <-ctx.Done():
		w.stop()
		return nil, ctx.Err()
	}
}

// stop closes the worker's stdin (it closes its sockets and exits) and
// waits, killing it after 30 s.
func (w *idleWorkerProc) stop() {
	_ = w.stdin.Close()
	done := make(chan struct{})
	go func() { _ = w.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		_ = w.cmd.Process.Kill()
		<-done
	}
}

// scrapeRuntime reads a few Go runtime gauges from the hub's /metrics.
func scrapeRuntime(base string) map[string]float64 {
	if base == "" {
		return nil
	}
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(base + "/metrics")
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		name, val, ok := strings.Cut(sc.Text(), " ")
		switch name {
		case "go_memstats_heap_inuse_bytes", "go_memstats_stack_inuse_bytes", "go_goroutines",
			"go_gc_duration_seconds_count", "go_memstats_alloc_bytes_total":
			if ok {
				out[name], _ = strconv.ParseFloat(strings.TrimSpace(val), 64)
			}
		}
	}
	return out
}

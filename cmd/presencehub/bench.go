package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/presencehub/presencehub/internal/loadgen"
	"github.com/presencehub/presencehub/server/auth"
)

// bench is the load generator (package loadgen does the work): against a
// running hub (-hub), or a hub it starts as a child process (-spawn, the
// default) so that it can read the hub's RSS and CPU from /proc.
func bench(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	var c config
	fs := flag.NewFlagSet("presencehub bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	c.bind(fs)
	hub := fs.String("hub", "", "hub WebSocket URL, e.g. ws://127.0.0.1:8080/ws (tokens minted with the configured secret); default: -spawn. Several, comma separated (hubs sharing a NATS store): the subscribers are spread over them")
	publishHub := fs.String("publish-hub", "", "with -hub: the publishers' hub (another hub on the same NATS store: PUBLISH→NOTIFY latency across hubs); default: the first -hub")
	spawn := fs.Bool("spawn", false, "start a hub child process (temp database, random 127.0.0.1 port); the default without -hub")
	hubPID := fs.Int("hub-pid", 0, "with -hub: the hub's pid, to read its RSS and CPU from /proc")
	// The defaults are the reference topology of the throughput targets.
	subscribers := fs.Int("subscribers", loadgen.DefaultSubscribers, "subscriber sockets (S)")
	subs := fs.Int("subs", loadgen.DefaultSubsPerSocket, "dialog subscriptions per subscriber socket (K)")
	resources := fs.Int("resources", loadgen.DefaultResources, "watched resources (R)")
	publishers := fs.Int("publishers", loadgen.DefaultPublishers, "publisher sockets (P)")
	duration := fs.Duration("duration", loadgen.DefaultDuration, "publishing time (at most 10m)")
	rate := fs.Float64("rate", 0, "PUBLISH/s over all publishers; 0: as fast as the hub answers")
	window := fs.Int("window", loadgen.DefaultWindow, "PUBLISHes in flight per publisher socket when not paced")
	drain := fs.Duration("drain", 15*time.Second, "bound on waiting for every subscription to show the final state")
	idle := fs.Int("idle", 0, "idle mode: N sockets with -idle-subs subscriptions each, holding; reports hub memory per socket and per subscription")
	idleSubs := fs.Int("idle-subs", 1, "idle mode: dialog subscriptions per socket")
	fill := fs.Int("fill", 0, "start-up mode: store N publications (N/2 AORs × dialog + presence, ~450 B bodies) through the store, start a hub on them, report time to /readyz, memory, /metrics time and first NOTIFYs")
	fillDBPath := fs.String("fill-db", "", "fill mode: keep the filled database at this path and reuse it on the next run (default: a temporary file, removed)")
	probes := fs.Int("probes", 20, "fill mode: new subscriptions to stored resources whose first NOTIFY is timed")
	settle := fs.Duration("settle", 5*time.Second, "idle mode: wait before reading the hub's memory")
	smoke := fs.Bool("smoke", false, "a tiny run of a few seconds (CI): exits non-zero when a check fails")
	jsonOnly := fs.Bool("json", false, "print only the JSON line")
	quiet := fs.Bool("q", false, "no progress lines on stderr")
	hubLog := fs.Bool("hub-log", false, "copy the spawned hub's log to stderr")
	var hubFlags listFlag
	fs.Var(&hubFlags, "hub-flag", "spawned hub: an extra serve flag, e.g. -hub-flag=-write-queue=64 (repeatable)")
	hubDB := fs.String("hub-db", "sqlite", "spawned hub's store: sqlite (a file in a temp dir) or memory")
	cpuProfile := fs.String("hub-cpuprofile", "", "spawned hub: write a CPU profile of the whole run to this file")
	memProfile := fs.String("hub-memprofile", "", "spawned hub: write a heap profile, live connections still held, to this file")
	genProfile := fs.String("cpuprofile", "", "write a CPU profile of the generator itself to this file")
	worker := fs.Bool("idle-worker", false, "internal: hold idle sockets for a parent bench process")
	workerOffset := fs.Int("idle-offset", 0, "internal: first idle socket number of a worker")
	if err := c.parse(fs, args, getenv); err != nil {
		return err
	}
	if *fill < 0 || *fill > 10_000_000 {
		return errors.New("bench: -fill is at most 10000000")
	}
	if *fill > 0 {
		return benchStartup(ctx, c, *fill, *fillDBPath, *probes, *hubLog, hubFlags, *cpuProfile, *memProfile, *jsonOnly, progressOf(*quiet, *jsonOnly, stderr), stdout)
	}
	if *idle > 0 && *idle > 200_000 {
		return errors.New("bench: -idle is at most 200000")
	}
	progress := progressOf(*quiet, *jsonOnly, stderr)

	if *worker {
		secret, err := c.secret()
		if err != nil || secret == nil {
			return fmt.Errorf("bench: idle worker needs the hub's secret: %v", err)
		}
		return loadgen.IdleWorker(ctx, loadgen.IdleConfig{Hub: *hub, Domain: c.Domain, Token: minter(secret, c),
			Resources: *resources, SubsPerSocket: *idleSubs}, getenv(loadgen.IdleRunEnv), *workerOffset, *idle, os.Stdin, stdout)
	}

	stopProfile, err := startCPUProfile(*genProfile)
	if err != nil {
		return err
	}
	defer stopProfile()
	if *smoke {
		*subscribers, *subs, *resources, *publishers = 4, 10, 20, 2
		*duration, *window, *drain = 2*time.Second, 4, 10*time.Second
	}
	var secret []byte
	var h *loadgen.Hub
	var stopOnce sync.Once
	stopHub := func() {
		stopOnce.Do(func() {
			if err := h.Stop(15 * time.Second); err != nil {
				fmt.Fprintln(stderr, "bench:", err)
			}
		})
	}
	if *publishHub != "" && (*hub == "" || *spawn) {
		return errors.New("bench: -publish-hub needs -hub (running hubs that share a NATS store)")
	}
	if *hub == "" || *spawn {
		*spawn = true
		secret = []byte(randomHex(32))
		c.Domain = "bench.test"
		var extra []string
		switch *hubDB {
		case "sqlite":
		case "memory":
			extra = append(extra, "-db", ":memory:")
		default:
			return fmt.Errorf("bench: -hub-db %q: sqlite or memory", *hubDB)
		}
		extra = append(extra, hubFlags...)
		if *cpuProfile != "" {
			extra = append(extra, "-cpuprofile", *cpuProfile)
		}
		if *memProfile != "" {
			extra = append(extra, "-memprofile", *memProfile)
		}
		var log io.Writer
		if *hubLog {
			log = stderr
		}
		var err error
		if h, err = loadgen.Spawn(ctx, loadgen.SpawnOptions{Secret: string(secret), Domain: c.Domain, Args: extra, Log: log}); err != nil {
			return err
		}
		defer stopHub()
		*hub, *hubPID = h.WS, h.PID
		if progress != nil {
			fmt.Fprintf(progress, "spawned hub pid %d at %s\n", h.PID, h.WS)
		}
	} else {
		var err error
		if secret, err = c.secret(); err != nil {
			return err
		}
		if secret == nil {
			return errors.New("bench: the hub verifies tokens with a public key; the generator can only mint HS256 tokens")
		}
	}
	token := minter(secret, c)
	limit, err := loadgen.RaiseFDLimit()
	if err != nil {
		return err
	}
	subHubs := splitList(*hub)
	if len(subHubs) > 1 && (*idle > 0 || *smoke) {
		return errors.New("bench: several -hub URLs are for load runs")
	}
	loadCfg := loadgen.Config{
		Hub: subHubs[0], SubscribeHubs: subHubs, PublishHub: *publishHub, Domain: c.Domain, Token: token, HubPID: *hubPID, HubHTTP: hubURL(h),
		Subscribers: *subscribers, SubsPerSocket: *subs, Resources: *resources, Publishers: *publishers,
		Duration: *duration, Rate: *rate, Window: *window, Drain: *drain, Progress: progress,
	}

	if *idle > 0 || *smoke {
		icfg := loadgen.IdleConfig{Hub: *hub, Domain: c.Domain, Token: token, HubPID: *hubPID, Sockets: *idle, SubsPerSocket: *idleSubs,
			Resources: *resources, PerProcess: int(limit) - 200, Settle: *settle, Progress: progress}
		if h != nil {
			icfg.HubHTTP = h.URL
			if *memProfile != "" {
				icfg.Hold = stopHub // the heap profile is written with every socket held
			}
		}
		exe, err := os.Executable()
		if err != nil {
			return err
		}
		icfg.Worker = func(offset, count int) *exec.Cmd {
			cmd := exec.CommandContext(ctx, exe, "bench", "-idle-worker", "-hub", *hub, "-domain", c.Domain,
				"-resources", strconv.Itoa(*resources), "-idle", strconv.Itoa(count), "-idle-offset", strconv.Itoa(offset),
				"-idle-subs", strconv.Itoa(*idleSubs))
			cmd.Env = append(os.Environ(), "PRESENCEHUB_JWT_SECRET="+string(secret))
			cmd.Stderr = stderr
			return cmd
		}
		if *smoke {
			// A load run, then a few idle sockets (the worker path included).
			if err := benchLoad(ctx, loadCfg, *jsonOnly, stdout); err != nil {
				return err
			}
			icfg.Sockets, icfg.PerProcess, icfg.Settle = 40, 25, 500*time.Millisecond
		}
		res, err := loadgen.RunIdle(ctx, icfg)
		if err != nil {
			return err
		}
		return report(stdout, res, *jsonOnly, res.OK, "bench: idle run failed")
	}
	return benchLoad(ctx, loadCfg, *jsonOnly, stdout)
}

// hubURL is a spawned hub's base URL ("" for a hub not spawned: its
// /metrics may be elsewhere or need a token).
func hubURL(h *loadgen.Hub) string {
	if h == nil {
		return ""
	}
	return h.URL
}

func progressOf(quiet, jsonOnly bool, stderr io.Writer) io.Writer {
	if quiet || jsonOnly {
		return nil
	}
	return stderr
}

// benchStartup is the fill mode: n publications stored, then a hub started
// on them and measured (loadgen.RunStartup).
func benchStartup(ctx context.Context, c config, n int, dbPath string, probes int, hubLog bool, hubFlags []string,
	cpuProfile, memProfile string, jsonOnly bool, progress, stdout io.Writer) error {
	c.Domain = "bench.test"
	if dbPath == "" {
		dir, err := os.MkdirTemp("", "presencehub-fill-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		dbPath = filepath.Join(dir, "fill.db")
	}
	t0 := time.Now()
	wrote, err := fillDB(ctx, dbPath, c.Domain, n, progress)
	if err != nil {
		return err
	}
	if progress != nil {
		fmt.Fprintf(progress, "fill: %d publications written in %.1fs to %s\n", wrote, time.Since(t0).Seconds(), dbPath)
	}
	secret := []byte(randomHex(32))
	args := append([]string(nil), hubFlags...)
	if cpuProfile != "" {
		args = append(args, "-cpuprofile", cpuProfile)
	}
	if memProfile != "" {
		args = append(args, "-memprofile", memProfile)
	}
	var log io.Writer
	if hubLog {
		log = progress
	}
	h, err := loadgen.Spawn(ctx, loadgen.SpawnOptions{Secret: string(secret), Domain: c.Domain, DB: dbPath, Args: args, Log: log, Listening: true,
		StartTimeout: 10 * time.Minute})
	if err != nil {
		return err
	}
	defer func() {
		if err := h.Stop(60 * time.Second); err != nil && progress != nil {
			fmt.Fprintln(progress, "bench:", err)
		}
	}()
	s := auth.Signer{Secret: secret, Domain: c.Domain}
	admin, err := s.Mint("bench-admin", time.Hour, func(cl *auth.Claims) { cl.Admin = true })
	if err != nil {
		return err
	}
	cfg := loadgen.StartupConfig{Hub: h, Domain: c.Domain, Token: minter(secret, c), AdminToken: admin, Stored: 2 * ((n + 1) / 2),
		Progress: progress}
	resources := (n + 1) / 2
	for i := range min(probes, resources) {
		r := int(uint64(i) * 2654435761 % uint64(resources)) // spread over the whole range
		cfg.Probes = append(cfg.Probes, fillUser(r))
		cfg.ProbeExpect = append(cfg.ProbeExpect, `id="`+fillDialogID(r)+`"`)
	}
	res, err := loadgen.RunStartup(ctx, cfg)
	if err != nil {
		return err
	}
	return report(stdout, res, jsonOnly, res.OK, "bench: start-up checks failed")
}

func benchLoad(ctx context.Context, cfg loadgen.Config, jsonOnly bool, stdout io.Writer) error {
	res, err := loadgen.Run(ctx, cfg)
	if err != nil {
		return err
	}
	return report(stdout, res, jsonOnly, res.OK, "bench: checks failed")
}

// result is what every bench mode prints: a human summary and one JSON line.
type result interface {
	WriteHuman(io.Writer)
	WriteJSON(io.Writer) error
}

// report prints r (the summary unless jsonOnly) and fails with failure
// when the run's checks did not pass.
func report(w io.Writer, r result, jsonOnly, ok bool, failure string) error {
	if !jsonOnly {
		r.WriteHuman(w)
	}
	if err := r.WriteJSON(w); err != nil {
		return err
	}
	if !ok {
		return errors.New(failure)
	}
	return nil
}

// minter mints generator tokens: publishers may publish every AOR.
func minter(secret []byte, c config) loadgen.TokenFunc {
	s := c.signer(secret)
	return func(sub string, publisher bool) (string, error) {
		return s.Mint(sub, 2*time.Hour, func(cl *auth.Claims) {
			if publisher {
				cl.Publish = []string{"*"}
			}
		})
	}
}

// listFlag is a repeatable string flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, " ") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

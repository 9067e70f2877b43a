package loadgen

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"
)

// StartupConfig describes a start-up run (RunStartup): a hub started on a
// database that already holds stored state, measured from the process start.
type StartupConfig struct {
	Hub    *Hub      // a hub just spawned on the filled database (Spawn)
	Domain string    // the hub's SIP domain
	Token  TokenFunc // required: mints the probe's subscriber token
	// AdminToken is a token with the admin claim, for timing the admin API;
	// "" skips it.
	AdminToken string
	// Stored is how many publications the database holds (reported).
	Stored int
	// Probes are stored resources (user parts) to subscribe to once the hub
	// is ready, one after the other: each gives one SUBSCRIBE → first
	// NOTIFY time. ProbeExpect[i], when set, must occur in probe i's first
	// NOTIFY body (the stored state really arrived).
	Probes      []string
	ProbeExpect []string
	// Scrapes is how many times /metrics is fetched (timed); default 5.
	Scrapes int
	// Ready bounds waiting for /readyz; default 10 minutes.
	Ready    time.Duration
	Progress io.Writer
}

// StartupResult is what a start-up run measured.
type StartupResult struct {
	Mode   string `json:"mode"` // "startup"
	Stored int    `json:"stored_publications"`
	HubPID int    `json:"hub_pid"`

	HealthzS float64 `json:"healthz_s"` // process start → first /healthz 200
	ReadyS   float64 `json:"ready_s"`   // process start → first /readyz 200
	CPUS     float64 `json:"hub_cpu_s"` // hub CPU time used until ready

	RSSReadyMiB   float64 `json:"hub_rss_ready_mib"`   // right when ready
	RSSSettledMiB float64 `json:"hub_rss_settled_mib"` // after the probes and scrapes
	RSSPeakMiB    float64 `json:"hub_rss_peak_mib"`    // VmHWM
	HeapInuseMiB  float64 `json:"hub_heap_inuse_mib"`  // go_memstats_heap_inuse_bytes after the scrapes
	Goroutines    float64 `json:"hub_goroutines"`

	MetricsMS     Latency `json:"metrics_ms"`       // GET /metrics
	MetricsStatus []int   `json:"metrics_status"`   // status of each scrape
	APIResources  float64 `json:"api_resources_ms"` // GET /api/resources?limit=10
	APIStatus     int     `json:"api_status,omitempty"`
	FirstNotify   Latency `json:"first_notify_ms"` // SUBSCRIBE sent → first NOTIFY received, per probe

	Load1    float64  `json:"load1"`
	OK       bool     `json:"ok"`
	Problems []string `json:"problems,omitempty"`
}

// WriteHuman writes the result as readable lines.
func (r *StartupResult) WriteHuman(w io.Writer) {
	fmt.Fprintf(w, "start-up    %d stored publications: /healthz after %.2fs, /readyz after %.2fs (hub CPU %.2fs)\n",
		r.Stored, r.HealthzS, r.ReadyS, r.CPUS)
	fmt.Fprintf(w, "hub         pid %d: RSS %.1f MiB when ready, %.1f MiB after the probes, peak %.1f MiB; heap in use %.1f MiB; %.0f goroutines\n",
		r.HubPID, r.RSSReadyMiB, r.RSSSettledMiB, r.RSSPeakMiB, r.HeapInuseMiB, r.Goroutines)
	fmt.Fprintf(w, "metrics     GET /metrics p50 %.1f ms, max %.1f ms (%d scrapes, status %v)\n",
		r.MetricsMS.P50, r.MetricsMS.Max, r.MetricsMS.Samples, r.MetricsStatus)
	if r.APIStatus != 0 {
		fmt.Fprintf(w, "admin API   GET /api/resources?limit=10 %.1f ms (status %d)\n", r.APIResources, r.APIStatus)
	}
	fmt.Fprintf(w, "first NOTIFY of a new subscription to a stored resource: p50 %.2f ms, max %.2f ms (%d probes)\n",
		r.FirstNotify.P50, r.FirstNotify.Max, r.FirstNotify.Samples)
	verdict := "PASS"
	if !r.OK {
		verdict = "FAIL: " + strings.Join(r.Problems, "; ")
	}
	fmt.Fprintf(w, "result      %s (load average %.2f)\n", verdict, r.Load1)
}

// WriteJSON writes the result as one JSON line.
func (r *StartupResult) WriteJSON(w io.Writer) error { return writeJSONLine(w, r) }

// RunStartup measures a hub's start-up on stored state: time to /healthz
// and /readyz, memory when ready, /metrics and admin API time, and the
// first NOTIFY of new subscriptions to stored resources.
func RunStartup(ctx context.Context, cfg StartupConfig) (*StartupResult, error) {
	h := cfg.Hub
	if h == nil || cfg.Domain == "" || cfg.Token == nil {
		return nil, errors.New("loadgen: Hub, Domain and Token are required")
	}
	if cfg.Scrapes <= 0 {
		cfg.Scrapes = 5
	}
	if cfg.Ready <= 0 {
		cfg.Ready = 10 * time.Minute
	}
	res := &StartupResult{Mode: "startup", Stored: cfg.Stored, HubPID: h.PID}
	problem := func(format string, args ...any) { res.Problems = append(res.Problems, fmt.Sprintf(format, args...)) }
	client := &http.Client{Timeout: 30 * time.Second}
	get := func(path, token string) (int, []byte, time.Duration, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, h.URL+path, nil)
		if err != nil {
			return 0, nil, 0, err
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		t0 := time.Now()
		resp, err := client.Do(req)
		if err != nil {
			return 0, nil, time.Since(t0), err
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp.StatusCode, body, time.Since(t0), err
	}

	// /healthz and /readyz, polled every 5 ms from the moment the hub listens.
	deadline := time.Now().Add(cfg.Ready)
	for res.HealthzS == 0 || res.ReadyS == 0 {
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("loadgen: hub not ready within %v", cfg.Ready)
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if res.HealthzS == 0 {
			if code, _, _, err := get("/healthz", ""); err == nil && code == http.StatusOK {
				res.HealthzS = time.Since(h.Started).Seconds()
			}
		}
		if code, _, _, err := get("/readyz", ""); err == nil && code == http.StatusOK {
			res.ReadyS = time.Since(h.Started).Seconds()
			if res.HealthzS == 0 {
				res.HealthzS = res.ReadyS
			}
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	ready, err := readProc(h.PID)
	if err != nil {
		return nil, err
	}
	res.RSSReadyMiB = mib(ready.rssBytes)
	res.CPUS = float64(ready.cpuTicks) / clockTicks
	if cfg.Progress != nil {
		fmt.Fprintf(cfg.Progress, "hub ready after %.2fs, RSS %.1f MiB\n", res.ReadyS, res.RSSReadyMiB)
	}

	// First NOTIFY of a new subscription to each probe resource.
	if len(cfg.Probes) > 0 {
		lat, err := probeFirstNotify(ctx, cfg)
		if err != nil {
			problem("first NOTIFY: %v", err)
		}
		res.FirstNotify = lat
	}

	// /metrics, timed; the last scrape also gives the heap.
	var h2 hist
	var last []byte
	for range cfg.Scrapes {
		code, body, d, err := get("/metrics", "")
		if err != nil {
			problem("GET /metrics: %v", err)
			continue
		}
		h2.record(d)
		res.MetricsStatus = append(res.MetricsStatus, code)
		if code != http.StatusOK {
			problem("GET /metrics: status %d", code)
		}
		last = body
	}
	res.MetricsMS = latencyOf(&h2)
	for _, line := range bytes.Split(last, []byte("\n")) {
		name, val, ok := strings.Cut(string(line), " ")
		if !ok {
			continue
		}
		var v float64
		if _, err := fmt.Sscan(val, &v); err != nil {
			continue
		}
		switch name {
		case "go_memstats_heap_inuse_bytes":
			res.HeapInuseMiB = v / (1 << 20)
		case "go_goroutines":
			res.Goroutines = v
		}
	}
	if cfg.AdminToken != "" {
		code, _, d, err := get("/api/resources?limit=10", cfg.AdminToken)
		if err != nil {
			problem("GET /api/resources: %v", err)
		}
		res.APIStatus, res.APIResources = code, float64(d.Microseconds())/1000
		if code != http.StatusOK {
			problem("GET /api/resources: status %d", code)
		}
	}
	settled, err := readProc(h.PID)
	if err != nil {
		return nil, err
	}
	res.RSSSettledMiB = mib(settled.rssBytes)
	res.RSSPeakMiB = mib(settled.hwmBytes)
	res.Load1 = readMachine().load1
	res.OK = len(res.Problems) == 0
	return res, nil
}

// probeFirstNotify subscribes to each probe resource on one socket, one at
// a time, and times SUBSCRIBE sent → first NOTIFY received.
func probeFirstNotify(ctx context.Context, cfg StartupConfig) (Latency, error) {
	tok, err := cfg.Token("startup-probe", false)
	if err != nil {
		return Latency{}, err
	}
	sock, err := dialSocket(ctx, cfg.Hub.WS, tok, 0, busyReadBuf)
	if err != nil {
		return Latency{}, err
	}
	defer sock.close()
	type note struct {
		callID string
		body   []byte
		at     time.Time
	}
	notes := make(chan note, 4)
	sock.serve(func(msg []byte) {
		var m message
		if !parseMessage(msg, &m) || !m.request {
			return
		}
		sock.queue(appendOK(nil, &m))
		if string(m.method) == "NOTIFY" {
			select {
			case notes <- note{callID: string(m.callID), body: slices.Clone(m.body), at: time.Now()}:
			default:
			}
		}
	})
	u := newUA(cfg.Domain, "startup-probe")
	var h hist
	run := randToken(5)
	var problems []string
	for i, user := range cfg.Probes {
		callID := run + "-probe-" + fmt.Sprint(i)
		t0 := time.Now()
		if err := sock.send(u.appendSubscribe(nil, user, callID, 600)); err != nil {
			return latencyOf(&h), err
		}
		timeout := time.After(10 * time.Second)
	wait:
		for {
			select {
			case n := <-notes:
				if n.callID != callID {
					continue // a NOTIFY of an earlier probe (refresh, change)
				}
				h.record(n.at.Sub(t0))
				if i < len(cfg.ProbeExpect) && cfg.ProbeExpect[i] != "" && !bytes.Contains(n.body, []byte(cfg.ProbeExpect[i])) {
					problems = append(problems, fmt.Sprintf("%s: first NOTIFY lacks %q", user, cfg.ProbeExpect[i]))
				}
				break wait
			case <-timeout:
				problems = append(problems, user+": no NOTIFY within 10s")
				break wait
			case <-ctx.Done():
				return latencyOf(&h), ctx.Err()
			}
		}
	}
	if len(problems) > 0 {
		if len(problems) > 3 {
			problems = append(problems[:3], fmt.Sprintf("and %d more", len(problems)-3))
		}
		return latencyOf(&h), errors.New(strings.Join(problems, "; "))
	}
	return latencyOf(&h), nil
}

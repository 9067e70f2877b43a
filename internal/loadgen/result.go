package loadgen

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

// Latency is a latency distribution in milliseconds.
type Latency struct {
	Samples uint64  `json:"samples"`
	P50     float64 `json:"p50"`
	P95     float64 `json:"p95"`
	P99     float64 `json:"p99"`
	Max     float64 `json:"max"`
	Mean    float64 `json:"mean"`
}

// Result is what a load run measured.
type Result struct {
	Mode string `json:"mode"` // "load"
	Hub  string `json:"hub"`
	// PublishHub and SubscribeHubs are set for a run across hubs sharing
	// one store: publishers on one hub, subscribers on others.
	PublishHub    string   `json:"publish_hub,omitempty"`
	SubscribeHubs []string `json:"subscribe_hubs,omitempty"`
	Subscribers   int      `json:"subscriber_sockets"`
	SubsPerSocket int      `json:"subscriptions_per_socket"`
	Subscriptions int      `json:"subscriptions"`
	Resources     int      `json:"resources"`
	Publishers    int      `json:"publisher_sockets"`
	TargetRate    float64  `json:"target_publish_per_s"` // 0: as fast as possible
	Window        int      `json:"window,omitempty"`     // PUBLISHes in flight per publisher (fast mode)
	Cores         int      `json:"cores"`

	ConnectPerS   float64 `json:"connect_per_s"`
	SubscribeS    float64 `json:"subscribe_s"`
	SubscribePerS float64 `json:"subscribe_per_s"`

	DurationS     float64 `json:"duration_s"`
	PublishSent   uint64  `json:"publish_sent"`
	PublishOK     uint64  `json:"publish_ok"`
	PublishPerS   float64 `json:"publish_per_s"`  // accepted
	PublishBehind uint64  `json:"publish_behind"` // paced sends skipped: every resource had one in flight
	// PublishScheduled is what the pacing schedule made due (paced mode):
	// target rate × duration, each sent or skipped (PublishBehind).
	PublishScheduled uint64  `json:"publish_scheduled,omitempty"`
	PublishRTT       Latency `json:"publish_rtt_ms"`
	Notify           uint64  `json:"notify"` // received while publishing
	NotifyPerS       float64 `json:"notify_per_s"`
	NotifyTotal      uint64  `json:"notify_total"` // including first and drain NOTIFYs
	Latency          Latency `json:"latency_ms"`   // PUBLISH sent → NOTIFY received
	ConvergeS        float64 `json:"converge_s"`   // after the last PUBLISH answer, until every subscription showed the final state

	HubPID              int     `json:"hub_pid,omitempty"`
	HubCPUPct           float64 `json:"hub_cpu_pct"` // percent of one core while publishing
	HubRSSStartMiB      float64 `json:"hub_rss_start_mib"`
	HubRSSSubscribedMiB float64 `json:"hub_rss_subscribed_mib"`
	HubRSSPeakMiB       float64 `json:"hub_rss_peak_mib"`
	HubRSSEndMiB        float64 `json:"hub_rss_end_mib"`
	HubThreads          int     `json:"hub_threads,omitempty"`
	// HubReads and HubWrites are the hub's read(2) and write(2) calls while
	// publishing (sockets, database and log together).
	HubReads  uint64 `json:"hub_read_syscalls,omitempty"`
	HubWrites uint64 `json:"hub_write_syscalls,omitempty"`
	// HubGCCycles and HubAllocPerNotify are from the hub's /metrics while
	// publishing (with Config.HubHTTP): its garbage collections, and the
	// bytes it allocated (all of its work) per NOTIFY delivered.
	HubGCCycles       uint64  `json:"hub_gc_cycles,omitempty"`
	HubAllocPerNotify float64 `json:"hub_alloc_bytes_per_notify,omitempty"`
	GenCPUPct         float64 `json:"generator_cpu_pct"`
	GenCPUTotalS      float64 `json:"generator_cpu_s"`
	// GenCPUPerNotifyUs is the generator's CPU (user + system, getrusage)
	// while publishing per NOTIFY received then, in µs: all of its work
	// (PUBLISHes, NOTIFYs, answers) divided by the NOTIFYs.
	GenCPUPerNotifyUs float64 `json:"generator_cpu_us_per_notify"`
	// GenReads and GenWrites are the generator's read(2) and write(2)
	// calls while publishing.
	GenReads         uint64  `json:"generator_read_syscalls"`
	GenWrites        uint64  `json:"generator_write_syscalls"`
	MachineBusyCores float64 `json:"machine_busy_cores"` // whole machine while publishing
	OtherBusyCores   float64 `json:"other_busy_cores"`   // machine minus hub minus generator
	Load1Start       float64 `json:"load1_start"`
	Load1End         float64 `json:"load1_end"`

	Checks   checks         `json:"checks"`
	Failures map[string]int `json:"failures,omitempty"` // "PUBLISH 503": count
	OK       bool           `json:"ok"`
	Problems []string       `json:"problems,omitempty"`
}

// WriteHuman writes the result as readable lines.
func (r *Result) WriteHuman(w io.Writer) {
	mode := "as fast as possible"
	if r.TargetRate > 0 {
		mode = fmt.Sprintf("paced at %.0f PUBLISH/s", r.TargetRate)
	} else if r.Window > 0 {
		mode += fmt.Sprintf(", %d in flight per publisher", r.Window)
	}
	fmt.Fprintf(w, "topology    %d subscriber sockets × %d dialog subscriptions over %d resources, %d publisher sockets; %s, %.1fs\n",
		r.Subscribers, r.SubsPerSocket, r.Resources, r.Publishers, mode, r.DurationS)
	fmt.Fprintf(w, "subscribe   %d subscriptions in %.2fs: %.0f SUBSCRIBE/s (200 + first NOTIFY)\n", r.Subscriptions, r.SubscribeS, r.SubscribePerS)
	fmt.Fprintf(w, "publish     %d sent, %d accepted: %.0f PUBLISH/s accepted; round trip p50 %.2f ms, p99 %.2f ms",
		r.PublishSent, r.PublishOK, r.PublishPerS, r.PublishRTT.P50, r.PublishRTT.P99)
	if r.PublishBehind > 0 {
		fmt.Fprintf(w, "; %d paced sends skipped (resource busy)", r.PublishBehind)
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "notify      %d delivered while publishing: %.0f NOTIFY/s (%d in all)\n", r.Notify, r.NotifyPerS, r.NotifyTotal)
	if r.PublishHub != "" {
		fmt.Fprintf(w, "hubs        publishers on %s, subscribers on %s: latency is across hubs\n", r.PublishHub, strings.Join(r.SubscribeHubs, ", "))
	}
	fmt.Fprintf(w, "latency     PUBLISH→NOTIFY p50 %.2f ms  p95 %.2f ms  p99 %.2f ms  max %.2f ms  (%d samples)\n",
		r.Latency.P50, r.Latency.P95, r.Latency.P99, r.Latency.Max, r.Latency.Samples)
	fmt.Fprintf(w, "converge    every subscription on the last published state %.2fs after the last PUBLISH answer\n", r.ConvergeS)
	if r.HubPID > 0 {
		fmt.Fprintf(w, "hub         pid %d: CPU %.0f%% of one core; RSS %.1f MiB at start, %.1f MiB subscribed, peak %.1f MiB, %.1f MiB at end\n",
			r.HubPID, r.HubCPUPct, r.HubRSSStartMiB, r.HubRSSSubscribedMiB, r.HubRSSPeakMiB, r.HubRSSEndMiB)
	}
	fmt.Fprintf(w, "machine     %d cores: %.2f busy (hub %.2f, generator %.2f, others %.2f); load average %.2f → %.2f\n",
		r.Cores, r.MachineBusyCores, r.HubCPUPct/100, r.GenCPUPct/100, r.OtherBusyCores, r.Load1Start, r.Load1End)
	if r.Notify > 0 {
		fmt.Fprintf(w, "generator   %.2f µs CPU per NOTIFY; %.1f NOTIFYs per read(2), %.1f per write(2)\n",
			r.GenCPUPerNotifyUs, perCall(r.Notify, r.GenReads), perCall(r.Notify, r.GenWrites))
		if r.HubReads > 0 {
			fmt.Fprintf(w, "hub I/O     %.1f NOTIFYs per write(2), %.1f per read(2)\n", perCall(r.Notify, r.HubWrites), perCall(r.Notify, r.HubReads))
		}
		if r.HubAllocPerNotify > 0 {
			fmt.Fprintf(w, "hub GC      %d collections while publishing (%.0f NOTIFYs each); %.0f bytes allocated per NOTIFY\n",
				r.HubGCCycles, perCall(r.Notify, r.HubGCCycles), r.HubAllocPerNotify)
		}
	}
	c := r.Checks
	fmt.Fprintf(w, "checks      version %d, duplicate bodies %d, out of order %d, wrong entity %d, terminated %d, malformed %d, subscribe failed %d, not ready %d, not final %d, publish failed %d, disconnects %d\n",
		c.VersionErrors, c.DuplicateBodies, c.OutOfOrder, c.WrongEntity, c.UnexpectedTerminated, c.Malformed,
		c.SubscribeFailures, c.NotReady, c.NotFinal, c.PublishFailures, c.Disconnects)
	if len(r.Failures) > 0 {
		var parts []string
		for _, k := range sortedKeys(r.Failures) {
			parts = append(parts, fmt.Sprintf("%s ×%d", k, r.Failures[k]))
		}
		fmt.Fprintf(w, "failures    %s\n", strings.Join(parts, ", "))
	}
	verdict := "PASS"
	if !r.OK {
		verdict = "FAIL: " + strings.Join(r.Problems, "; ")
	}
	fmt.Fprintf(w, "result      %s\n", verdict)
}

// perCall is n per call (0 without calls).
func perCall(n, calls uint64) float64 {
	if calls == 0 {
		return 0
	}
	return float64(n) / float64(calls)
}

// WriteJSON writes the result as one JSON line.
func (r *Result) WriteJSON(w io.Writer) error { return writeJSONLine(w, r) }

func writeJSONLine(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}

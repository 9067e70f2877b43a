package main

import (
	"context"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// The fill mode stores publications through the store, starts a hub on
// them and reports its start-up; a second run reuses the filled database.
func TestBenchFill_MeasuresAHubStartedOnStoredState(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns hubs")
	}
	bin := presencehubBinary(t)
	db := filepath.Join(t.TempDir(), "fill.db")
	for _, run := range []string{"fills", "reuses"} {
		t.Run(run, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			out, err := exec.CommandContext(ctx, bin, "bench", "-fill", "400", "-fill-db", db, "-probes", "5", "-json").Output()
			if err != nil {
				t.Fatalf("bench -fill: %v\n%s", err, out)
			}
			var res struct {
				OK          bool    `json:"ok"`
				Stored      int     `json:"stored_publications"`
				ReadyS      float64 `json:"ready_s"`
				RSS         float64 `json:"hub_rss_ready_mib"`
				Metrics     []int   `json:"metrics_status"`
				APIStatus   int     `json:"api_status"`
				FirstNotify struct {
					Samples int `json:"samples"`
				} `json:"first_notify_ms"`
				Problems []string `json:"problems"`
			}
			if err := json.Unmarshal(out, &res); err != nil {
				t.Fatalf("%v: %s", err, out)
			}
			if !res.OK || res.Stored != 400 || res.ReadyS <= 0 || res.RSS <= 0 || len(res.Metrics) == 0 ||
				res.APIStatus != 200 || res.FirstNotify.Samples != 5 {
				t.Fatalf("result %+v", res)
			}
			for _, code := range res.Metrics {
				if code != 200 {
					t.Fatalf("/metrics status %v", res.Metrics)
				}
			}
		})
	}
}

package main

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"testing"
	"time"
)

// gcPercent is the current GC percent (set back at once).
func gcPercent() int {
	p := debug.SetGCPercent(100)
	debug.SetGCPercent(p)
	return p
}

func heapGoalAndLive() (goal, live uint64) {
	s := []metrics.Sample{{Name: "/gc/heap/goal:bytes"}, {Name: "/gc/heap/live:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64(), s[1].Value.Uint64()
}

func TestGCPolicy_HeadroomKeepsTheHeapGoalAboveTheLiveHeapUntilUndone(t *testing.T) {
	before := gcPercent()
	const headroom = 64 << 20
	undo, err := gcPolicy{Percent: 100, Headroom: headroom}.apply(func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	// Each collection's cleanup sets the percent from the live heap it found.
	deadline := time.Now().Add(10 * time.Second)
	var goal, live uint64
	for {
		runtime.GC()
		time.Sleep(10 * time.Millisecond) // the cleanup runs after the collection
		if goal, live = heapGoalAndLive(); goal >= live+headroom*95/100 {
			break
		}
		if time.Now().After(deadline) {
			undo()
			t.Fatalf("heap goal %d MB with %d MB live, want at least live + 64 MiB (percent %d)", goal>>20, live>>20, gcPercent())
		}
	}
	if p := gcPercent(); p <= 100 {
		t.Errorf("percent %d with %d MB live: the headroom did not raise it", p, live>>20)
	}
	undo()
	if p := gcPercent(); p != before {
		t.Errorf("after undo the percent is %d, want %d", p, before)
	}
	runtime.GC() // a cleanup still armed must not set it again
	time.Sleep(50 * time.Millisecond)
	runtime.GC()
	time.Sleep(50 * time.Millisecond)
	if p := gcPercent(); p != before {
		t.Errorf("a collection after undo set the percent to %d, want %d", p, before)
	}
}

func TestGCPolicy_EnvironmentStandsUnlessAFlagIsGiven(t *testing.T) {
	before, beforeLimit := gcPercent(), debug.SetMemoryLimit(-1)
	tests := []struct {
		name        string
		policy      gcPolicy
		gogc        string
		wantPercent int
		wantLimit   int64
	}{
		{"Go's default", gcPolicy{}, "", 100, beforeLimit},
		{"GOGC stands", gcPolicy{}, "250", 250, beforeLimit},
		{"GOGC=off stands, no headroom kept", gcPolicy{Headroom: 64 << 20}, "off", -1, beforeLimit},
		{"the flag wins over GOGC", gcPolicy{Percent: 300}, "250", 300, beforeLimit},
		{"memory limit", gcPolicy{Limit: 1 << 30}, "", 100, 1 << 30},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			undo, err := tt.policy.apply(func(k string) string {
				if k == "GOGC" {
					return tt.gogc
				}
				return ""
			})
			if err != nil {
				t.Fatal(err)
			}
			p, l := gcPercent(), debug.SetMemoryLimit(-1)
			undo()
			if p != tt.wantPercent || l != tt.wantLimit {
				t.Errorf("percent %d, limit %d; want %d, %d", p, l, tt.wantPercent, tt.wantLimit)
			}
			if p, l := gcPercent(), debug.SetMemoryLimit(-1); p != before || l != beforeLimit {
				t.Errorf("undo left percent %d, limit %d; want %d, %d", p, l, before, beforeLimit)
			}
		})
	}
}

func TestByteSize(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		str  string
	}{
		{"64MiB", 64 << 20, "64MiB"}, {"1GiB", 1 << 30, "1GiB"}, {"512MB", 512e6, "500000KiB"}, {"100000", 100000, "100000"},
		{"0", 0, "0"}, {"2048 KiB", 2 << 20, "2MiB"}, {"3KB", 3000, "3000"}, {"1536MiB", 1536 << 20, "1536MiB"},
	}
	for _, tt := range tests {
		var s byteSize
		if err := s.Set(tt.in); err != nil || int64(s) != tt.want || s.String() != tt.str {
			t.Errorf("Set(%q) = %d (%q), %v; want %d (%q)", tt.in, s, s.String(), err, tt.want, tt.str)
		}
	}
	for _, bad := range []string{"", "-1", "1.5GiB", "12XB", "MiB", "99999999999GiB"} {
		var s byteSize
		if err := s.Set(bad); err == nil {
			t.Errorf("Set(%q) = %d, want an error", bad, s)
		}
	}
}

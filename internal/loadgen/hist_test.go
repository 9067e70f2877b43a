package loadgen

import (
	"math"
	"testing"
	"time"
)

func TestHist_QuantilesWithinBucketPrecision(t *testing.T) {
	var h hist
	for i := 1; i <= 100000; i++ {
		h.record(time.Duration(i) * time.Microsecond)
	}
	for _, tt := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 50 * time.Millisecond}, {0.95, 95 * time.Millisecond}, {0.99, 99 * time.Millisecond}, {1, 100 * time.Millisecond}} {
		got := h.quantile(tt.q)
		if rel := math.Abs(float64(got-tt.want)) / float64(tt.want); rel > 0.02 {
			t.Errorf("q%.2f = %v, want %v ± 2%%", tt.q, got, tt.want)
		}
	}
	if h.max != int64(100*time.Millisecond) || h.n != 100000 {
		t.Errorf("max %d n %d", h.max, h.n)
	}
}

func TestHist_IndexMonotonicAndValueInBucket(t *testing.T) {
	prev := -1
	for v := int64(0); v < 1<<22; v += 1 + v/50 {
		i := histIndex(v)
		if i < prev {
			t.Fatalf("index(%d) = %d < %d", v, i, prev)
		}
		prev = i
		if got := histValue(i); math.Abs(float64(got-v)) > float64(v)/histSub+1 {
			t.Fatalf("value(index(%d)) = %d", v, got)
		}
	}
}

func TestHist_MergeAndEmpty(t *testing.T) {
	var a, b, empty hist
	if empty.quantile(0.99) != 0 || empty.mean() != 0 {
		t.Error("empty histogram not zero")
	}
	a.record(time.Millisecond)
	b.record(3 * time.Millisecond)
	a.merge(&b)
	if a.n != 2 || a.mean() != 2*time.Millisecond || time.Duration(a.max) != 3*time.Millisecond {
		t.Errorf("merged n %d mean %v max %d", a.n, a.mean(), a.max)
	}
}

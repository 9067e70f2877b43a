package main

import (
	"errors"
	"fmt"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync"
)

// gcPolicy is the hub's garbage-collector setting, applied at serve
// start-up. Go collects when the heap has grown by GOGC percent of the live
// heap; the hub's live heap is small (tens of MB) next to what it allocates
// at peak (parsed requests, built NOTIFYs), so at GOGC=100 it collects
// several times a second. Headroom lets the heap grow by at least that
// many bytes between collections: a small hub collects less often for a
// bounded RSS cost, and a big one (many idle sockets, a live heap above the
// headroom) keeps Go's percent and its memory per socket.
type gcPolicy struct {
	Percent  int   // growth over the live heap that starts a collection, as GOGC; 0: GOGC or Go's 100
	Headroom int64 // bytes the heap may always grow by between collections; 0: none
	Limit    int64 // soft memory limit, as GOMEMLIMIT; 0: GOMEMLIMIT or none
}

// apply sets the policy for this process and returns the function that
// undoes it (serve runs in-process in tests). Variables GOGC and GOMEMLIMIT
// stand when the policy's Percent or Limit is 0; with GOGC=off there is no
// headroom to keep.
func (p gcPolicy) apply(getenv func(string) string) (undo func(), err error) {
	percent := p.Percent
	if percent == 0 {
		percent = 100
		if v := getenv("GOGC"); v != "" {
			if strings.EqualFold(v, "off") {
				percent = -1
			} else if percent, err = strconv.Atoi(v); err != nil {
				return nil, fmt.Errorf("GOGC=%q: want a whole number or off", v)
			}
		}
	}
	prevPercent := debug.SetGCPercent(percent)
	prevLimit := debug.SetMemoryLimit(-1)
	if p.Limit > 0 {
		debug.SetMemoryLimit(p.Limit)
	}
	h := &headroom{base: percent, bytes: uint64(p.Headroom)}
	if percent > 0 && p.Headroom > 0 {
		h.adjust()
	}
	return func() {
		h.stop()
		debug.SetGCPercent(prevPercent)
		debug.SetMemoryLimit(prevLimit)
	}, nil
}

// headroom re-sets the GC percent after every collection to
// max(base, 100 × bytes / (live heap + stacks + globals)), the part of
// memory the percent applies to: the heap goal is then at least
// live + bytes. It runs in the runtime's cleanup goroutine, once per
// collection, and ends with stop.
type headroom struct {
	base  int
	bytes uint64

	mu      sync.Mutex
	stopped bool
	live    []metrics.Sample
}

// sentinel is allocated per collection; its cleanup runs after the
// collection that found it unreachable. Bigger than the tiny-allocator size,
// so it is an object of its own.
type sentinel struct{ _ [32]byte }

func (h *headroom) adjust() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.stopped {
		return
	}
	if h.live == nil {
		// The heap goal is live + GOGC% of (live + stacks + globals).
		h.live = []metrics.Sample{{Name: "/gc/heap/live:bytes"}, {Name: "/gc/scan/stack:bytes"}, {Name: "/gc/scan/globals:bytes"}}
	}
	metrics.Read(h.live)
	var live, scanned uint64
	for i, s := range h.live {
		if s.Value.Kind() == metrics.KindUint64 {
			scanned += s.Value.Uint64()
			if i == 0 {
				live = s.Value.Uint64()
			}
		}
	}
	percent := h.base
	if live > 0 { // 0: before the first collection
		p := h.bytes * 100 / scanned
		// The runtime's floor of the heap goal, 4 MiB × percent/100, must
		// stay below live + bytes too.
		p = min(p, (live+h.bytes)*100/(4<<20), 1<<20)
		percent = max(percent, int(p))
	}
	debug.SetGCPercent(percent)
	runtime.AddCleanup(new(sentinel), func(h *headroom) { h.adjust() }, h)
}

func (h *headroom) stop() {
	h.mu.Lock()
	h.stopped = true
	h.mu.Unlock()
}

// defaultGCHeadroom is --gc-headroom's default.
const defaultGCHeadroom = 64 << 20

// gcPolicy is the policy c's flags ask for: Percent 0 (GOGC stands) unless
// --gc-percent was given.
func (c *config) gcPolicy() gcPolicy {
	p := gcPolicy{Headroom: int64(c.GCHeadroom), Limit: int64(c.MemoryLimit)}
	if c.fromCLI["gc-percent"] || c.fromEnv["gc-percent"] {
		p.Percent = c.GCPercent
	}
	return p
}

// byteSize is a flag holding a number of bytes: 64MiB, 512MB, 1GiB, 100000.
type byteSize int64

var sizeUnits = []struct {
	suffix string
	n      int64
}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"B", 1}}

func (s *byteSize) Set(v string) error {
	num, mult := strings.TrimSpace(v), int64(1)
	for _, u := range sizeUnits {
		if n, ok := strings.CutSuffix(num, u.suffix); ok {
			num, mult = strings.TrimSpace(n), u.n
			break
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n < 0 || n > (1<<62)/mult {
		return errors.New("want a size like 64MiB, 512MB, 1GiB or 0")
	}
	*s = byteSize(n * mult)
	return nil
}

func (s *byteSize) String() string {
	if s == nil {
		return "0"
	}
	n := int64(*s)
	for i := 2; i >= 0; i-- { // GiB, MiB, KiB: the largest that divides
		if u := sizeUnits[i]; n != 0 && n%u.n == 0 {
			return strconv.FormatInt(n/u.n, 10) + u.suffix
		}
	}
	return strconv.FormatInt(n, 10)
}

func (s *byteSize) Get() any { return *s }

package loadgen

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/presencehub/presencehub/internal/siprule"
	"golang.org/x/sync/errgroup"
)

// checks counts what went wrong, per socket and in total.
type checks struct {
	VersionErrors        uint64 `json:"version_errors"`        // dialog-info version not previous+1
	DuplicateBodies      uint64 `json:"duplicate_bodies"`      // same body (but version) twice in a row
	OutOfOrder           uint64 `json:"out_of_order"`          // an older state after a newer one
	WrongEntity          uint64 `json:"wrong_entity"`          // entity is not the watched AOR
	UnexpectedTerminated uint64 `json:"unexpected_terminated"` // terminated NOTIFY during the run
	Malformed            uint64 `json:"malformed"`             // unparsable or unmatched message
	SubscribeFailures    uint64 `json:"subscribe_failures"`    // SUBSCRIBE not answered 2xx
	NotReady             uint64 `json:"not_ready"`             // subscriptions without 200 + first NOTIFY in time
	NotFinal             uint64 `json:"not_final"`             // subscriptions not showing the last published state at the end
	PublishFailures      uint64 `json:"publish_failures"`      // PUBLISH answered >= 300 or unsendable
	Disconnects          uint64 `json:"disconnects"`           // sockets closed before the end
}

func (c *checks) add(o checks) {
	c.VersionErrors += o.VersionErrors
	c.DuplicateBodies += o.DuplicateBodies
	c.OutOfOrder += o.OutOfOrder
	c.WrongEntity += o.WrongEntity
	c.UnexpectedTerminated += o.UnexpectedTerminated
	c.Malformed += o.Malformed
	c.SubscribeFailures += o.SubscribeFailures
	c.NotReady += o.NotReady
	c.NotFinal += o.NotFinal
	c.PublishFailures += o.PublishFailures
	c.Disconnects += o.Disconnects
}

func (c checks) total() uint64 {
	return c.VersionErrors + c.DuplicateBodies + c.OutOfOrder + c.WrongEntity + c.UnexpectedTerminated +
		c.Malformed + c.SubscribeFailures + c.NotReady + c.NotFinal + c.PublishFailures + c.Disconnects
}

// run is one load run.
type run struct {
	cfg   Config
	id    string
	start time.Time

	subs []*subscriber
	pubs []*publisher

	users, aors []string // by resource (prepare)

	ready    atomic.Int64  // subscriptions with 200 + first NOTIFY
	notifies atomic.Uint64 // NOTIFYs received
	stopping atomic.Bool   // the run is ending: terminated NOTIFYs are expected

	failMu   sync.Mutex
	failures map[string]int // "PUBLISH 503" -> count
}

// prepare names every resource once (users, aors), not per message.
func (r *run) prepare() {
	r.users = make([]string, r.cfg.Resources)
	r.aors = make([]string, r.cfg.Resources)
	for i := range r.users {
		r.users[i] = r.cfg.Prefix + r.id + "-" + strconv.Itoa(i)
		r.aors[i] = siprule.AOR(r.users[i], r.cfg.Domain)
	}
}

// user is resource's user part, aor its AOR.
func (r *run) user(resource int) string { return r.users[resource] }
func (r *run) aor(resource int) string  { return r.aors[resource] }

func (r *run) noteFailure(method string, code int) {
	r.failMu.Lock()
	r.failures[method+" "+strconv.Itoa(code)]++
	r.failMu.Unlock()
}

func (r *run) progress(format string, args ...any) {
	if r.cfg.Progress != nil {
		fmt.Fprintf(r.cfg.Progress, format+"\n", args...)
	}
}

// Run connects, subscribes, publishes for cfg.Duration, waits for every
// subscription to show its resource's last published state, and reports.
// An error means the run could not be carried out; failed checks are in
// the Result (Result.OK).
func Run(ctx context.Context, cfg Config) (*Result, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	r := &run{cfg: cfg, id: randToken(5), start: time.Now(), failures: map[string]int{}}
	r.prepare()
	res := &Result{Mode: "load", Hub: cfg.Hub, Subscribers: cfg.Subscribers, SubsPerSocket: cfg.SubsPerSocket,
		Subscriptions: cfg.Subscribers * cfg.SubsPerSocket, Resources: cfg.Resources, Publishers: cfg.Publishers,
		TargetRate: cfg.Rate, Window: cfg.Window, Cores: runtime.NumCPU()}
	if cfg.Rate > 0 {
		res.Window = 0
	}
	if len(cfg.SubscribeHubs) > 1 || cfg.SubscribeHubs[0] != cfg.PublishHub {
		res.PublishHub, res.SubscribeHubs = cfg.PublishHub, cfg.SubscribeHubs
	}
	self := os.Getpid()
	genStart, _ := readProc(self)
	var hubStart procSample
	if cfg.HubPID > 0 {
		var err error
		if hubStart, err = readProc(cfg.HubPID); err != nil {
			return nil, err
		}
	}
	defer r.closeAll()

	// Connect.
	t0 := time.Now()
	if err := r.connect(ctx); err != nil {
		return nil, err
	}
	res.ConnectPerS = float64(cfg.Subscribers+cfg.Publishers) / time.Since(t0).Seconds()
	r.progress("connected %d subscriber and %d publisher sockets in %v", cfg.Subscribers, cfg.Publishers, time.Since(t0).Round(time.Millisecond))

	// Subscribe: every subscription answered 200 and its first NOTIFY in.
	t0 = time.Now()
	want := int64(cfg.Subscribers * cfg.SubsPerSocket)
	for _, s := range r.subs {
		s.startSubscribing()
	}
	subTimeout := 30*time.Second + time.Duration(want)*time.Millisecond
	if !waitFor(ctx, subTimeout, func() bool { return r.ready.Load() >= want || r.subscribeDone() }) {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
	}
	res.SubscribeS = time.Since(t0).Seconds()
	if want > 0 {
		res.SubscribePerS = float64(r.ready.Load()) / res.SubscribeS
	}
	r.progress("subscribed %d of %d in %.2fs (%.0f SUBSCRIBE/s)", r.ready.Load(), want, res.SubscribeS, res.SubscribePerS)
	hubSub := hubStart
	if cfg.HubPID > 0 {
		hubSub, _ = readProc(cfg.HubPID)
		res.HubRSSSubscribedMiB = mib(hubSub.rssBytes)
	}

	// Publish.
	pctx, cancel := context.WithTimeout(ctx, cfg.Duration)
	defer cancel()
	mStart := readMachine()
	rtPub := scrapeRuntime(cfg.HubHTTP)
	genPub, _ := readProc(self)
	cpuPub := selfCPU()
	hubPub := hubSub
	n0 := r.notifies.Load()
	var paced sync.WaitGroup
	var scheduled atomic.Uint64
	pubStart := time.Now()
	// The pacing schedule starts where the publishing context's deadline
	// says it does (not when each pacer's goroutine first runs).
	scheduleStart := pubStart
	if end, ok := pctx.Deadline(); ok {
		scheduleStart = end.Add(-cfg.Duration)
	}
	for _, p := range r.pubs {
		if cfg.Rate > 0 {
			paced.Go(func() { scheduled.Add(p.pace(pctx, scheduleStart, cfg.Rate/float64(cfg.Publishers))) })
		} else {
			p.startFast(cfg.Window)
		}
	}
	peak := r.watch(pctx, pubStart, &res.HubRSSPeakMiB)
	<-pctx.Done()
	paced.Wait()
	stopCtx, stopCancel := context.WithTimeout(context.Background(), 10*time.Second)
	for _, p := range r.pubs {
		p.stop(stopCtx)
	}
	stopCancel()
	elapsed := time.Since(pubStart)
	n1 := r.notifies.Load()
	mEnd := readMachine()
	genEnd, _ := readProc(self)
	cpuEnd := selfCPU()
	rtEnd := scrapeRuntime(cfg.HubHTTP)
	peak()
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	res.DurationS = elapsed.Seconds()
	res.Notify = n1 - n0
	res.NotifyPerS = float64(res.Notify) / elapsed.Seconds()
	res.GenCPUPct = cpuPercent(genPub, genEnd)
	res.GenReads, res.GenWrites = genEnd.readCalls-genPub.readCalls, genEnd.writeCalls-genPub.writeCalls
	if rtPub != nil && rtEnd != nil {
		res.HubGCCycles = uint64(rtEnd["go_gc_duration_seconds_count"] - rtPub["go_gc_duration_seconds_count"])
		if res.Notify > 0 {
			res.HubAllocPerNotify = (rtEnd["go_memstats_alloc_bytes_total"] - rtPub["go_memstats_alloc_bytes_total"]) / float64(res.Notify)
		}
	}
	if res.Notify > 0 {
		res.GenCPUPerNotifyUs = float64((cpuEnd - cpuPub).Microseconds()) / float64(res.Notify)
	}
	res.Load1Start, res.Load1End = mStart.load1, mEnd.load1
	res.MachineBusyCores = busyCores(mStart, mEnd)
	if cfg.HubPID > 0 {
		hubEnd, err := readProc(cfg.HubPID)
		if err == nil {
			res.HubCPUPct = cpuPercent(hubPub, hubEnd)
			res.HubRSSEndMiB = mib(hubEnd.rssBytes)
			res.HubRSSStartMiB = mib(hubStart.rssBytes)
			res.HubThreads = hubEnd.threads
			res.HubReads, res.HubWrites = hubEnd.readCalls-hubPub.readCalls, hubEnd.writeCalls-hubPub.writeCalls
		}
		res.HubPID = cfg.HubPID
	}
	res.OtherBusyCores = res.MachineBusyCores - (res.HubCPUPct+res.GenCPUPct)/100
	res.GenCPUTotalS = float64(genEnd.cpuTicks-genStart.cpuTicks) / clockTicks
	var rtt hist
	for _, p := range r.pubs {
		p.mu.Lock()
		res.PublishSent += p.sent
		res.PublishOK += p.ok
		res.PublishBehind += p.behind
		rtt.merge(&p.rtt)
		p.mu.Unlock()
	}
	res.PublishScheduled = scheduled.Load()
	res.PublishPerS = float64(res.PublishOK) / elapsed.Seconds()
	res.PublishRTT = latencyOf(&rtt)
	r.progress("published %d (%d accepted) in %.1fs; %d NOTIFYs; draining", res.PublishSent, res.PublishOK, res.DurationS, res.Notify)

	// Drain: every subscription must show its resource's last accepted state.
	final := make([]uint64, cfg.Resources)
	for _, p := range r.pubs {
		p.mu.Lock()
		for _, pr := range p.res {
			final[pr.global] = pr.accepted
		}
		p.mu.Unlock()
	}
	t0 = time.Now()
	waitFor(ctx, cfg.Drain, func() bool { return r.lagging(final) == 0 })
	res.ConvergeS = time.Since(t0).Seconds()
	res.NotifyTotal = r.notifies.Load()
	r.stopping.Store(true)

	var lat hist
	var c checks
	for _, s := range r.subs {
		s.mu.Lock()
		lat.merge(&s.lat)
		c.add(s.c)
		for i := range s.subs {
			st := &s.subs[i]
			switch {
			case st.failed:
			case !st.accepted || !st.initial:
				c.NotReady++
			case st.lastSeq != final[st.resource]:
				c.NotFinal++
			}
		}
		s.mu.Unlock()
		if s.sock.ended() {
			c.Disconnects++
		}
	}
	for _, p := range r.pubs {
		p.mu.Lock()
		c.add(p.c)
		c.PublishFailures += p.failed
		p.mu.Unlock()
		if p.sock.ended() {
			c.Disconnects++
		}
	}
	res.Latency = latencyOf(&lat)
	res.Checks = c
	r.failMu.Lock()
	res.Failures = r.failures
	r.failMu.Unlock()
	res.OK = c.total() == 0 && res.PublishOK > 0
	if res.PublishOK == 0 {
		res.Problems = append(res.Problems, "no PUBLISH was accepted")
	}
	if c.total() > 0 {
		res.Problems = append(res.Problems, fmt.Sprintf("%d check failures", c.total()))
	}
	return res, nil
}

// connect dials every socket, a few at a time.
func (r *run) connect(ctx context.Context) error {
	cfg := r.cfg
	r.subs = make([]*subscriber, cfg.Subscribers)
	r.pubs = make([]*publisher, cfg.Publishers)
	for i := range r.subs {
		s := &subscriber{r: r, idx: i, ua: newUA(cfg.Domain, "bench-s"+strconv.Itoa(i)), subs: make([]subscription, cfg.SubsPerSocket)}
		for k := range s.subs {
			s.subs[k] = subscription{resource: (i*cfg.SubsPerSocket + k) % cfg.Resources, callID: s.callID(k)}
		}
		r.subs[i] = s
	}
	for j := range r.pubs {
		p := &publisher{r: r, idx: j, ua: newUA(cfg.Domain, "bench-p"+strconv.Itoa(j))}
		for g := j; g < cfg.Resources; g += cfg.Publishers {
			p.idle = append(p.idle, len(p.res))
			p.res = append(p.res, pubResource{global: g, callID: pubCallID(r.id, g)})
		}
		r.pubs[j] = p
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(32)
	for _, s := range r.subs {
		g.Go(func() error {
			tok, err := cfg.Token(s.ua.user, false)
			if err != nil {
				return err
			}
			if s.sock, err = dialSocket(gctx, cfg.SubscribeHubs[s.idx%len(cfg.SubscribeHubs)], tok, s.idx, busyReadBuf); err != nil {
				return err
			}
			s.sock.serve(s.handle)
			return nil
		})
	}
	for _, p := range r.pubs {
		g.Go(func() error {
			tok, err := cfg.Token(p.ua.user, true)
			if err != nil {
				return err
			}
			if p.sock, err = dialSocket(gctx, cfg.PublishHub, tok, cfg.Subscribers+p.idx, busyReadBuf); err != nil {
				return err
			}
			p.sock.serve(p.handle)
			return nil
		})
	}
	return g.Wait()
}

// subscribeDone reports whether every SUBSCRIBE has been answered and no
// first NOTIFY is still expected for an accepted one... or a socket died.
func (r *run) subscribeDone() bool {
	for _, s := range r.subs {
		if s.sock.ended() {
			return true
		}
		s.mu.Lock()
		busy := s.next < len(s.subs) || s.pending > 0
		if !busy {
			for i := range s.subs {
				if st := &s.subs[i]; st.accepted && !st.initial {
					busy = true
					break
				}
			}
		}
		s.mu.Unlock()
		if busy {
			return false
		}
	}
	return true
}

// lagging counts subscriptions not yet showing final[resource].
func (r *run) lagging(final []uint64) int {
	n := 0
	for _, s := range r.subs {
		if s.sock.ended() {
			continue
		}
		s.mu.Lock()
		for i := range s.subs {
			st := &s.subs[i]
			if st.accepted && !st.ended && st.lastSeq != final[st.resource] {
				n++
			}
		}
		s.mu.Unlock()
	}
	return n
}

// watch samples the hub's RSS (peak into *peakMiB) and prints progress
// every 5 s until ctx ends; the returned func waits for it.
func (r *run) watch(ctx context.Context, start time.Time, peakMiB *float64) func() {
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		lastN, lastT, ticks := r.notifies.Load(), time.Now(), 0
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			if r.cfg.HubPID > 0 {
				if s, err := readProc(r.cfg.HubPID); err == nil {
					*peakMiB = max(*peakMiB, mib(s.rssBytes))
				}
			}
			if ticks++; ticks%20 == 0 {
				n, now := r.notifies.Load(), time.Now()
				var ok uint64
				for _, p := range r.pubs {
					p.mu.Lock()
					ok += p.ok
					p.mu.Unlock()
				}
				r.progress("  t=%4.1fs  %8.0f NOTIFY/s  %9d PUBLISH accepted so far", now.Sub(start).Seconds(),
					float64(n-lastN)/now.Sub(lastT).Seconds(), ok)
				lastN, lastT = n, now
			}
		}
	}()
	return func() { <-done }
}

func (r *run) closeAll() {
	r.stopping.Store(true)
	var wg sync.WaitGroup
	for _, s := range r.subs {
		if s != nil && s.sock != nil {
			wg.Go(s.sock.close)
		}
	}
	for _, p := range r.pubs {
		if p != nil && p.sock != nil {
			wg.Go(p.sock.close)
		}
	}
	wg.Wait()
}

// waitFor polls cond every 20 ms until it holds (true), timeout passes or ctx ends.
func waitFor(ctx context.Context, timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return false
		}
		select {
		case <-ctx.Done():
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

// latencyOf summarises h in milliseconds.
func latencyOf(h *hist) Latency {
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	return Latency{Samples: h.n, P50: ms(h.quantile(0.50)), P95: ms(h.quantile(0.95)), P99: ms(h.quantile(0.99)),
		Max: ms(time.Duration(h.max)), Mean: ms(h.mean())}
}

// sortedKeys lists m's keys in order (stable report lines).
func sortedKeys(m map[string]int) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

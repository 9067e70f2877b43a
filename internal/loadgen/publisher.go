package loadgen

import (
	"bytes"
	"context"
	"errors"
	"strconv"
	"sync"
	"time"
)

// pubResource is one resource a publisher owns: its publication's
// entity-tag chain (RFC 3903 §4.4: each PUBLISH names the previous answer's
// SIP-ETag) allows one PUBLISH in flight at a time.
type pubResource struct {
	global   int
	callID   string
	cseq     uint32
	etag     string
	seq      uint64 // sequence number of the newest PUBLISH sent
	accepted uint64 // sequence number of the newest PUBLISH answered 200
	inFlight bool
	sentAt   time.Duration
	expires  int // Expires of the PUBLISH in flight
}

// publisher is one publisher socket.
type publisher struct {
	r    *run
	idx  int
	sock *wsConn
	ua   ua

	mu       sync.Mutex
	res      []pubResource
	idle     []int // local indexes of resources with nothing in flight, FIFO
	head     int
	inFlight int
	window   int  // fast mode: requests in flight; 0 while paced or stopped
	removing bool // clean-up: PUBLISH Expires 0

	sent, ok, failed, behind uint64
	rtt                      hist
	body, msg                []byte
	c                        checks
}

func (p *publisher) popIdle() (int, bool) {
	if p.head == len(p.idle) {
		return 0, false
	}
	i := p.idle[p.head]
	p.head++
	if p.head > 1024 && p.head*2 > len(p.idle) {
		p.idle = append(p.idle[:0], p.idle[p.head:]...)
		p.head = 0
	}
	return i, true
}

// sendLocked sends the next PUBLISH for local resource i.
func (p *publisher) sendLocked(i int) {
	pr := &p.res[i]
	pr.seq++
	pr.cseq++
	pr.inFlight = true
	pr.sentAt = time.Since(p.r.start)
	pr.expires = p.r.cfg.Expires
	user := p.r.user(pr.global)
	var body []byte
	if p.removing {
		pr.expires = 0
	} else {
		p.body = appendDialogBody(p.body[:0], p.r.cfg.Domain, user, pr.seq, int64(pr.sentAt))
		body = p.body
	}
	p.msg = p.ua.appendPublish(p.msg[:0], user, pr.callID, pr.cseq, pr.etag, pr.expires, body)
	p.sock.queue(p.msg)
	p.inFlight++
	p.sent++
}

// fillLocked keeps window PUBLISHes in flight.
func (p *publisher) fillLocked() {
	for p.inFlight < p.window {
		i, ok := p.popIdle()
		if !ok {
			return
		}
		if p.removing && p.res[i].etag == "" {
			continue
		}
		p.sendLocked(i)
	}
}

// startFast sends as fast as the hub answers, window requests in flight.
func (p *publisher) startFast(window int) {
	p.mu.Lock()
	p.window = window
	p.fillLocked()
	p.mu.Unlock()
	_ = p.sock.flush()
}

// pace sends rate PUBLISH/s from start until ctx ends: by any moment t the
// schedule has made rate×(t−start) sends due, each sent or, when every
// resource still waits for its previous answer, skipped (counted as behind).
// A late tick catches up, and when ctx reaches its deadline the sends due
// by the deadline are made before pace returns, so a run keeps its whole
// schedule however the generator's goroutine was scheduled. It returns the
// number of sends due (sent + behind).
func (p *publisher) pace(ctx context.Context, start time.Time, rate float64) uint64 {
	var sent uint64
	end, bounded := ctx.Deadline()
	catchUp := func(at time.Time) {
		if bounded && at.After(end) {
			at = end
		}
		due := uint64(at.Sub(start).Seconds() * rate)
		p.mu.Lock()
		for ; sent < due; sent++ {
			i, ok := p.popIdle()
			if !ok {
				p.behind += due - sent
				sent = due
				break
			}
			p.sendLocked(i)
		}
		p.mu.Unlock()
		_ = p.sock.flush()
	}
	t := time.NewTicker(time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			if bounded && errors.Is(ctx.Err(), context.DeadlineExceeded) {
				catchUp(end)
			}
			return sent
		case now := <-t.C:
			catchUp(now)
		}
	}
}

// stop stops sending and waits (bounded) for the answers in flight.
func (p *publisher) stop(ctx context.Context) {
	p.mu.Lock()
	p.window = 0
	p.mu.Unlock()
	for {
		p.mu.Lock()
		n := p.inFlight
		p.mu.Unlock()
		if n == 0 || p.sock.ended() {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// handle is the socket's message handler (read goroutine).
func (p *publisher) handle(msg []byte) {
	var m message
	if !parseMessage(msg, &m) {
		p.mu.Lock()
		p.c.Malformed++
		p.mu.Unlock()
		return
	}
	if m.request {
		p.sock.queue(appendOK(nil, &m))
		return
	}
	if m.status < 200 || string(m.cseqMeth) != "PUBLISH" {
		return
	}
	now := time.Since(p.r.start)
	p.mu.Lock()
	defer p.mu.Unlock()
	i := p.local(m.callID)
	if i < 0 || !p.res[i].inFlight || m.cseqNum != p.res[i].cseq {
		p.c.Malformed++
		return
	}
	pr := &p.res[i]
	pr.inFlight = false
	p.inFlight--
	p.rtt.record(now - pr.sentAt)
	switch {
	case m.status < 300:
		p.ok++
		if pr.expires == 0 {
			pr.etag = ""
		} else {
			pr.accepted = pr.seq
			pr.etag = string(m.etag)
		}
	default:
		p.failed++
		p.r.noteFailure("PUBLISH", m.status)
		if m.status == 412 {
			pr.etag = "" // the publication is gone: start a new one
		}
	}
	p.idle = append(p.idle, i)
	p.fillLocked()
}

// local finds the resource a Call-ID names ("<run>-p-<global>").
func (p *publisher) local(callID []byte) int {
	j := bytes.LastIndexByte(callID, '-')
	if j < 0 {
		return -1
	}
	g, ok := atoi(callID[j+1:])
	if !ok {
		return -1
	}
	i := g / p.r.cfg.Publishers
	if i >= len(p.res) || p.res[i].global != g {
		return -1
	}
	return i
}

func pubCallID(run string, global int) string {
	return run + "-p-" + strconv.Itoa(global)
}

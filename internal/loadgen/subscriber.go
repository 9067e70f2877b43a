package loadgen

import (
	"bytes"
	"strconv"
	"sync"
	"time"
)

// subscription is one dialog-event subscription, as the generator checks it.
type subscription struct {
	resource int
	callID   string

	accepted  bool // 200 to the SUBSCRIBE
	initial   bool // first NOTIFY received
	failed    bool // SUBSCRIBE refused
	ended     bool // terminated NOTIFY received
	notifies  uint64
	nextVer   uint64 // expected dialog-info version (RFC 4235 §4.1: +1 per NOTIFY)
	lastHash  uint64 // body without version of the last NOTIFY
	lastSeq   uint64 // publisher sequence number the last NOTIFY showed
	lastState []byte
}

// subscriber is one subscriber socket with its subscriptions. Everything
// below mu is touched by the socket's read goroutine and, under mu, by the
// run's checks.
type subscriber struct {
	r    *run
	idx  int
	sock *wsConn
	ua   ua

	mu      sync.Mutex
	subs    []subscription
	next    int // next subscription to send a SUBSCRIBE for
	pending int // SUBSCRIBEs in flight
	ready   int // subscriptions with their 200 and first NOTIFY
	lat     hist
	c       checks
	buf     []byte // SUBSCRIBE being built (under mu)
	out     []byte // response being built (read goroutine)
}

// subscribeWindow is how many SUBSCRIBEs a socket keeps in flight.
const subscribeWindow = 32

func (s *subscriber) callID(k int) string {
	return s.r.id + "-s" + strconv.Itoa(s.idx) + "-" + strconv.Itoa(k)
}

// startSubscribing sends the first SUBSCRIBEs; responses send the rest.
func (s *subscriber) startSubscribing() {
	s.mu.Lock()
	s.fillLocked()
	s.mu.Unlock()
	_ = s.sock.flush()
}

func (s *subscriber) fillLocked() {
	for s.pending < subscribeWindow && s.next < len(s.subs) {
		st := &s.subs[s.next]
		s.next++
		s.buf = s.ua.appendSubscribe(s.buf[:0], s.r.user(st.resource), st.callID, s.r.cfg.Expires)
		s.sock.queue(s.buf)
		s.pending++
	}
}

// handle is the socket's message handler (read goroutine).
func (s *subscriber) handle(msg []byte) {
	var m message
	if !parseMessage(msg, &m) {
		s.mu.Lock()
		s.c.Malformed++
		s.mu.Unlock()
		return
	}
	if m.request {
		// Answer first: the hub keeps one NOTIFY in flight per subscription.
		s.out = appendOK(s.out[:0], &m)
		s.sock.queue(s.out)
		if string(m.method) == "NOTIFY" {
			s.onNotify(&m, time.Since(s.r.start))
		}
		return
	}
	if string(m.cseqMeth) == "SUBSCRIBE" {
		s.onSubscribeResponse(&m)
	}
}

// sub finds the subscription a Call-ID names ("<run>-s<socket>-<k>").
func (s *subscriber) sub(callID []byte) *subscription {
	i := bytes.LastIndexByte(callID, '-')
	if i < 0 {
		return nil
	}
	k, ok := atoi(callID[i+1:])
	if !ok || k >= len(s.subs) || s.subs[k].callID != string(callID) {
		return nil
	}
	return &s.subs[k]
}

func (s *subscriber) onSubscribeResponse(m *message) {
	if m.status < 200 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.sub(m.callID)
	if st == nil {
		s.c.Malformed++
		return
	}
	s.pending--
	if m.status >= 300 {
		st.failed = true
		s.c.SubscribeFailures++
		s.r.noteFailure("SUBSCRIBE", m.status)
	} else {
		st.accepted = true
		if st.initial {
			s.ready++
			s.r.ready.Add(1)
		}
	}
	s.fillLocked()
}

func (s *subscriber) onNotify(m *message, now time.Duration) {
	s.r.notifies.Add(1)
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.sub(m.callID)
	if st == nil {
		s.c.Malformed++
		return
	}
	var d dialogBody
	parseDialogBody(m.body, s.r.aor(st.resource), &d)
	terminated := bytes.HasPrefix(m.subState, []byte("terminated"))
	switch {
	case !d.hasVer:
		s.c.Malformed++
	case d.version != st.nextVer:
		s.c.VersionErrors++
	}
	st.nextVer = d.version + 1
	if !d.entityOK {
		s.c.WrongEntity++
	}
	if st.notifies > 0 && !terminated && d.hash == st.lastHash {
		// Deduplication: the same body (apart from version) twice in a row.
		s.c.DuplicateBodies++
	}
	if d.seq < st.lastSeq {
		s.c.OutOfOrder++
	}
	if st.initial && d.seq > st.lastSeq && d.sentNs > 0 {
		s.lat.record(now - time.Duration(d.sentNs))
	}
	st.notifies++
	st.lastHash = d.hash
	if d.seq >= st.lastSeq {
		st.lastSeq = d.seq
		st.lastState = append(st.lastState[:0], d.state...)
	}
	if terminated {
		if !st.ended && !s.r.stopping.Load() {
			s.c.UnexpectedTerminated++
		}
		st.ended = true
	}
	if !st.initial {
		st.initial = true
		if st.accepted {
			s.ready++
			s.r.ready.Add(1)
		}
	}
}

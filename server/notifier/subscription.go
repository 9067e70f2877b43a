package notifier

import (
	"bytes"
	"errors"
	"strconv"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/presencehub/presencehub/server/flow"
)

// dialogKey identifies a subscription dialog from the notifier's side
// (RFC 3261 §12: Call-ID, local tag, remote tag).
type dialogKey struct{ callID, localTag, remoteTag string }

type resourceKey struct{ resource, event string }

// Termination reasons of Subscription-State (RFC 6665 §4.1.3).
const (
	ReasonTimeout     = "timeout"
	ReasonDeactivated = "deactivated"
	ReasonNoResource  = "noresource"
	ReasonRejected    = "rejected"
)

// outgoing is one NOTIFY's content: a body and, for the final one, its reason.
type outgoing struct {
	body   Body
	reason string // "" while active
}

// subscription is one subscription dialog.
type subscription struct {
	n        *Notifier
	key      dialogKey
	res      resourceKey
	watcher  string // the subscriber's identity (token sub)
	provider *Provider
	variant  string
	list     *listState // a resource list subscription (list.go); nil otherwise
	resAt    int32      // position in Notifier.byResource (not for lists)
	// expAt is the position in the expiry heap + 1 (0: not queued) and
	// deadline when it expires (Unix ns); both guarded by the queue's mutex.
	expAt    int32
	deadline int64
	// dialog is the NOTIFY request line and every header that never
	// changes in this dialog and is not the same in every dialog, already
	// serialized (dialogHeaders); the Via goes at viaAt, the hub's
	// Max-Forwards and Contact, shared by all, at fixedAt.
	dialog         []byte
	viaAt, fixedAt int32

	mu       sync.Mutex
	flow     *flow.Flow // nil while detached (the flow closed)
	detached int64      // when the flow closed (Notifier.clock)
	expires  time.Time
	version  uint64
	lastRev  uint64
	last     *Body // body of the newest NOTIFY queued (nil: none yet)
	// The NOTIFY in flight: what it carried, the flow it went out on and
	// when (Notifier.clock), for Answered.
	sent   outgoing
	sentOn *flow.Flow
	sentAt int64
	// next is the NOTIFY waiting for the one in flight (hasNext).
	next     outgoing
	cseq     uint32
	inFlight bool
	hasNext  bool
	final    bool // the final NOTIFY is queued: nothing may follow it
	done     bool // removed from the notifier
}

// offer queues the view's body unless the subscriber has already been sent
// the same bytes (apart from version). force sends even an unchanged body
// (a refresh is answered with a NOTIFY, RFC 6665 §4.2.1.2). body is shared
// by every subscription it was rendered for and never modified.
// With r non-nil the NOTIFY waits in its flow's queue until r is released
// (Run's round, round.go).
func (s *subscription) offer(rev uint64, body *Body, force bool, r *round) {
	s.mu.Lock()
	if s.final || s.done || rev < s.lastRev {
		s.mu.Unlock()
		return
	}
	s.lastRev = rev
	if !force && s.last != nil && bytes.Equal(body.Data, s.last.Data) {
		s.mu.Unlock()
		s.n.obs.NotifyDeduplicated(s.res.event)
		return
	}
	s.last = body
	send := s.queueLocked(outgoing{body: *body})
	s.mu.Unlock()
	send.runIn(r)
}

// terminate queues the final NOTIFY with reason; the subscription ends when
// it is answered (or cannot be delivered).
func (s *subscription) terminate(reason string) {
	s.mu.Lock()
	if s.final || s.done {
		s.mu.Unlock()
		return
	}
	s.final = true
	s.n.expiry.cancel(s)
	o := outgoing{reason: reason, body: Body{VersionAt: -1}}
	if s.last != nil {
		o.body = *s.last // JsSIP emits no event for a body-less NOTIFY
	}
	send := s.queueLocked(o)
	s.mu.Unlock()
	send.run()
}

func noop() {}

// sendOp is a NOTIFY built under the subscription's lock, to hand to its
// flow once the lock is released (the flow may answer at once, calling
// back into the subscription). The zero sendOp sends nothing. A value,
// not a closure, so that a NOTIFY allocates no function.
type sendOp struct {
	s      *subscription
	fl     *flow.Flow
	msg    []byte
	branch flow.Branch
	report bool // tell the observer (every NOTIFY but the first)
}

func (op sendOp) run() {
	if op.fl == nil {
		return
	}
	if op.report {
		op.s.n.obs.NotifyWritten(op.s.res.resource, op.s.res.event)
	}
	op.fl.RequestRecycle(op.msg, op.s.n.recycle, op.branch, op.s)
}

// runIn is run, the NOTIFY held in its flow's queue until r is released
// (nil r: run).
func (op sendOp) runIn(r *round) {
	if r == nil || op.fl == nil {
		op.run()
		return
	}
	if op.report {
		op.s.n.obs.NotifyWritten(op.s.res.resource, op.s.res.event)
	}
	if op.fl.RequestHeld(op.msg, op.s.n.recycle, op.branch, op.s) {
		r.hold(op.fl)
	}
}

// keepLocked makes o the next NOTIFY unless a final one already waits
// (only the newest state matters; a final NOTIFY is never replaced).
func (s *subscription) keepLocked(o outgoing) {
	if !s.hasNext || s.next.reason == "" {
		s.next, s.hasNext = o, true
	}
}

// queueLocked sends o now if nothing is in flight, or keeps it as the next
// NOTIFY (replacing an older pending one: only the newest state matters).
// It returns the sending to do without s.mu.
func (s *subscription) queueLocked(o outgoing) sendOp {
	if s.inFlight || s.flow == nil {
		s.keepLocked(o)
		return sendOp{}
	}
	return s.transmitLocked(o)
}

// transmitNextLocked sends the waiting NOTIFY, if any.
func (s *subscription) transmitNextLocked() sendOp {
	if !s.hasNext {
		return sendOp{}
	}
	return s.transmitLocked(s.next)
}

func (s *subscription) transmitLocked(o outgoing) sendOp {
	if s.list != nil {
		// A list's body is made now from what is pending (rlmi.go).
		body, ok := s.list.renderLocked(o.reason)
		if !ok {
			s.next, s.hasNext = outgoing{}, false
			return sendOp{}
		}
		o.body = body
	}
	s.inFlight = true
	s.next, s.hasNext = outgoing{}, false
	s.cseq++
	branch := flow.NewBranch()
	msg := s.build(o, branch)
	// What is in flight, for Answered (one NOTIFY at a time).
	s.sent, s.sentOn, s.sentAt = o, s.flow, s.n.clock()
	return sendOp{s: s, fl: s.flow, msg: msg, branch: branch, report: s.cseq != 1}
}

// Answered implements flow.Answerer: the outcome of the NOTIFY in flight
// (RFC 6665 §4.2.2: a failed NOTIFY ends the subscription).
func (s *subscription) Answered(res *sip.Response, err error) {
	s.mu.Lock()
	o, fl, sent := s.sent, s.sentOn, s.sentAt
	s.sent, s.sentOn = outgoing{}, nil
	s.inFlight = false
	switch {
	case errors.Is(err, flow.ErrClosed) && s.flow != nil && s.flow != fl:
		// The client came back on another flow before this one's close was
		// seen (rebind): what was lost goes out there, unless newer state
		// is already waiting.
		if !s.hasNext || s.next.reason == "" && o.reason != "" {
			s.next, s.hasNext = o, true
		}
		send := s.transmitLocked(s.next)
		s.mu.Unlock()
		send.run()
		return
	case errors.Is(err, flow.ErrClosed) && (o.reason != "" || s.final):
		// The final NOTIFY cannot be delivered: the subscription is over
		// anyway (the client un-SUBSCRIBEd and closed its tab) — also when
		// the final one was still waiting behind this NOTIFY (the tab
		// closed before answering the first NOTIFY): no rebind is owed to
		// a terminated subscription.
		s.mu.Unlock()
		s.n.remove(s)
		return
	case errors.Is(err, flow.ErrClosed):
		// The socket went away: keep the NOTIFY for a rebind within grace.
		if s.list != nil {
			s.list.full = true // what it carried is lost: resend everything
		}
		if !s.hasNext || s.next.reason == "" && o.reason != "" {
			s.next, s.hasNext = o, true
		}
		s.flow = nil
		s.detached = s.n.clock()
		s.mu.Unlock()
		return
	case err != nil:
		s.mu.Unlock()
		s.n.obs.NotifyFailed(s.res.event, "timeout")
		s.n.remove(s)
		return
	case res.StatusCode >= 300:
		s.mu.Unlock()
		s.n.obs.NotifyFailed(s.res.event, strconv.Itoa(res.StatusCode))
		s.n.remove(s)
		return
	}
	rtt := time.Duration(s.n.clock() - sent)
	s.n.obs.NotifySent(s.res.event, rtt)
	if s.list != nil && rtt > slowAnswer {
		s.list.full = true // a slow subscriber gets one resync, not a backlog
	}
	if o.reason != "" {
		s.mu.Unlock()
		s.n.remove(s)
		return
	}
	send := s.transmitNextLocked()
	s.mu.Unlock()
	send.run()
}

// notifyFixedSize bounds what build writes besides the dialog's headers,
// the configured strings, the reason and the body: Via's fixed part and
// branch, Max-Forwards, the header names, CSeq, Subscription-State and
// Content-Length with their numbers.
const notifyFixedSize = len("Via: SIP/2.0/ ;branch=z9hG4bK0123456789abcdef\r\nMax-Forwards: 70\r\nContact: \r\n") +
	len("CSeq: 4294967295 NOTIFY\r\nSubscription-State: active;expires=18446744073709551615\r\nterminated;reason=\r\n") +
	len("Content-Type: \r\nContent-Length: 18446744073709551615\r\n\r\n")

// build serializes one NOTIFY (RFC 6665 §4.2.2, §8.2.3: Event with the
// SUBSCRIBE's id, Subscription-State, Contact).
func (s *subscription) build(o outgoing, branch flow.Branch) []byte {
	data, at := o.body.Data, o.body.VersionAt
	var ver []byte
	if data != nil && at >= 0 {
		ver = strconv.AppendUint(make([]byte, 0, 20), s.version, 10)
		s.version++
	}
	contact := s.n.cfg.Contact
	ctype := ""
	if data != nil {
		ctype = s.provider.ContentType
		if s.list != nil {
			ctype = s.list.ctype
		}
	}
	b := s.n.bufs.get(len(s.dialog) + len(s.n.cfg.ViaTransport) + len(s.n.cfg.ViaHost) + len(contact) + len(ctype) +
		len(o.reason) + len(data) + len(ver) + notifyFixedSize)
	b = append(b, s.dialog[:s.viaAt]...)
	b = append(b, "Via: SIP/2.0/"...)
	b = append(b, s.n.cfg.ViaTransport...)
	b = append(b, ' ')
	b = append(b, s.n.cfg.ViaHost...)
	b = append(b, ";branch="...)
	b = branch.AppendTo(b)
	b = append(b, "\r\n"...)
	b = append(b, "Max-Forwards: 70\r\n"...)
	b = append(b, s.dialog[s.viaAt:s.fixedAt]...)
	b = append(b, "Contact: "...)
	b = append(b, contact...)
	b = append(b, "\r\n"...)
	b = append(b, s.dialog[s.fixedAt:]...)
	b = append(b, "CSeq: "...)
	b = strconv.AppendUint(b, uint64(s.cseq), 10)
	b = append(b, " NOTIFY\r\nSubscription-State: "...)
	if o.reason == "" {
		left := int64(time.Until(s.expires)+time.Second-1) / int64(time.Second)
		if left < 0 {
			left = 0
		}
		b = append(b, "active;expires="...)
		b = strconv.AppendInt(b, left, 10)
	} else {
		b = append(b, "terminated;reason="...)
		b = append(b, o.reason...)
	}
	b = append(b, "\r\n"...)
	if data != nil {
		b = append(b, "Content-Type: "...)
		b = append(b, ctype...)
		b = append(b, "\r\n"...)
	}
	b = append(b, "Content-Length: "...)
	b = strconv.AppendInt(b, int64(len(data)+len(ver)), 10)
	b = append(b, "\r\n\r\n"...)
	if ver != nil {
		b = append(b, data[:at]...)
		b = append(b, ver...)
		b = append(b, data[at:]...)
	} else {
		b = append(b, data...)
	}
	return b
}

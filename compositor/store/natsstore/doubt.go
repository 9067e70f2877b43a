package natsstore

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"

	"github.com/presencehub/presencehub/compositor/store"
)

// A write whose acknowledgement does not come in time (a NATS leader
// election, a connection cut mid-request) may or may not be stored. The
// caller is told store.ErrBusy (SIP 503: "not done"), so it must end up
// not done: settle sends the identical message again (same Nats-Msg-Id,
// so JetStream answers a duplicate with the sequence it got) until the
// answer is known, and if it was stored, writes back what the key held
// before, compare-and-swap on that sequence. Watchers may see the change
// and its undoing; every hub ends on the state the callers were told.
const (
	settleRetry   = 250 * time.Millisecond
	settleAttempt = 2 * time.Second
	// settleFor stays inside the bucket's duplicate window (2 min): after
	// it a resent message would no longer be recognised.
	settleFor = 90 * time.Second
)

// undo says what settle restores when a write answered "busy" was stored.
type undo struct {
	keep bool               // leave it (an expiry, a delete-all: due anyway)
	prev *store.Publication // the version before; nil: no version (a create)
}

// undoTo restores old if it is the version the write replaced.
func undoTo(old store.Publication, ifRev uint64) undo {
	if old.Rev != ifRev {
		return undo{keep: true} // the version at ifRev is not known here
	}
	return undo{prev: &old}
}

type outcome int

const (
	unknown  outcome = iota // no answer: maybe stored
	landed                  // stored (err == nil)
	conflict                // refused: the key's revision is not the expected one
	refused                 // refused otherwise, or never reached a stream: not stored
)

func outcomeOf(err error) outcome {
	if err == nil {
		return landed
	}
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) {
		if apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
			apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant {
			return conflict
		}
		return refused
	}
	if errors.Is(err, jetstream.ErrNoStreamResponse) || errors.Is(err, nats.ErrNoResponders) {
		return refused // no stream took it
	}
	return unknown
}

// publish sends m and waits for its acknowledgement; "no responders" (no
// stream leader at this instant) is retried until ctx ends.
func (s *Store) publish(ctx context.Context, m *nats.Msg) (*jetstream.PubAck, error) {
	return s.js.PublishMsg(ctx, m, jetstream.WithRetryAttempts(1000), jetstream.WithRetryWait(100*time.Millisecond))
}

// settle resolves m in the background (one goroutine, owned by the store,
// ended by Close).
func (s *Store) settle(m *nats.Msg, u undo) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.settling.Add(1)
	s.mu.Unlock()
	s.inDoubt.Add(1)
	go func() {
		defer s.settling.Done()
		defer s.inDoubt.Add(-1)
		ack, ok := s.resend(m)
		if !ok || ack == nil || u.keep {
			return
		}
		s.log.Warn("natsstore: a write answered busy was stored; restoring the version before it", "key", m.Subject, "rev", ack.Sequence)
		back := &nats.Msg{Subject: m.Subject, Header: nats.Header{}}
		back.Header.Set(jetstream.MsgIDHeader, nuid.Next())
		back.Header.Set(jetstream.ExpectedLastSubjSeqHeader, strconv.FormatUint(ack.Sequence, 10))
		if u.prev != nil && u.prev.Expires.After(s.now()) {
			data, err := encode(*u.prev)
			if err != nil {
				return
			}
			back.Data = data
			back.Header.Set(jetstream.MsgTTLHeader, s.ttl(u.prev.Expires).String())
		} else {
			back.Header.Set("KV-Operation", "PURGE")
			back.Header.Set(jetstream.MsgRollup, jetstream.MsgRollupSubject)
			back.Header.Set(jetstream.MsgTTLHeader, s.markerTTL.String())
		}
		s.resend(back) // a conflict: written since; that writer's state stands
	}()
}

// resend sends m until its fate is known: ack is set when it is stored;
// ok is false when it is still unknown after settleFor or at Close.
func (s *Store) resend(m *nats.Msg) (ack *jetstream.PubAck, ok bool) {
	deadline := time.Now().Add(settleFor)
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(s.settleCtx, settleAttempt)
		ack, err := s.publish(ctx, m)
		cancel()
		switch outcomeOf(err) {
		case landed:
			return ack, true
		case conflict, refused:
			return nil, true
		}
		select {
		case <-s.settleCtx.Done():
			return nil, false
		case <-time.After(settleRetry):
		}
	}
	s.log.Error("natsstore: a write answered busy is still in doubt", "key", m.Subject)
	return nil, false
}

package natsstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"
)

// Following the bucket: one ephemeral consumer at a time (R1, in memory,
// no acks) from the next sequence the local copy needs. Its delivery
// sequence must count up by one; a gap, a missing heartbeat (its server
// died, or this connection moved to another server) or a deleted consumer
// ends it, and a new one starts from the next sequence after what was
// applied: no change is skipped or applied twice. Restarts are retried
// every followRetry, so the stream resumes as soon as JetStream can place
// a consumer again (after a meta leader election when its server died).
const (
	followHeartbeat = 500 * time.Millisecond // missing twice: the consumer is gone
	followExpiry    = 2 * time.Second        // pull request lifetime (> 2 heartbeats)
	followRetry     = 250 * time.Millisecond
	followInactive  = 30 * time.Second // the server drops a consumer left behind by a crash
)

// follow runs until ctx ends (Close); done is closed when it returned.
func (s *Store) follow(ctx context.Context, streamName string, done chan<- struct{}) {
	defer close(done)
	base := nuid.Next()
	failing := false     // the last attempt could not even create a consumer
	var lostAt time.Time // when the last working consumer failed
	for serial := 1; ctx.Err() == nil; serial++ {
		if !lostAt.IsZero() && time.Since(lostAt) > s.markerTTL/2 {
			// Markers of what was removed meanwhile may be gone.
			if err := s.resync(ctx, streamName); err != nil {
				s.log.Debug("natsstore: reading the bucket again failed", "err", err)
				select {
				case <-ctx.Done():
					return
				case <-time.After(followRetry):
				}
				continue
			}
			lostAt = time.Time{}
		}
		name := fmt.Sprintf("%s_%d", base, serial)
		var outage time.Time
		created, err := s.followOnce(ctx, streamName, name, serial > 1, lostAt, &outage)
		switch {
		case !created: // still lost since lostAt
		case !outage.IsZero():
			lostAt = outage
		default:
			lostAt = time.Now()
		}
		dctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_ = s.js.DeleteConsumer(dctx, streamName, name) // best effort; the server drops it when idle
		cancel()
		if ctx.Err() != nil {
			return
		}
		if created || !failing {
			s.log.Warn("natsstore: change stream lost; resuming from the next revision", "from", s.Stats().Rev+1, "err", err)
		} else {
			s.log.Debug("natsstore: change stream not resumed yet", "err", err)
		}
		failing = !created
		select {
		case <-ctx.Done():
			return
		case <-time.After(followRetry):
		}
	}
}

// followOnce creates one consumer from the next needed sequence and
// applies what it delivers until it fails or ctx ends.
//
// A consumer on a surviving server outlives this connection's outage and
// goes on delivering after it, but it cannot deliver markers that expired
// meanwhile; so an outage of the connection longer than half of MarkerTTL
// also ends it, with *lostAt set to when the connection went down.
func (s *Store) followOnce(ctx context.Context, streamName, name string, resume bool, lostSince time.Time, lostAt *time.Time) (created bool, err error) {
	s.mu.Lock()
	start := s.rev + 1
	s.mu.Unlock()
	cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	cons, err := s.js.CreateConsumer(cctx, streamName, jetstream.ConsumerConfig{
		Name:              name,
		DeliverPolicy:     jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:       start,
		AckPolicy:         jetstream.AckNonePolicy,
		FilterSubject:     s.prefix + ">",
		MemoryStorage:     true,
		Replicas:          1,
		InactiveThreshold: followInactive,
	})
	cancel()
	if err != nil {
		return false, fmt.Errorf("create consumer: %w", err)
	}
	if !lostSince.IsZero() && time.Since(lostSince) > s.markerTTL/2 {
		// The request waited out a long outage (it is sent on reconnect).
		return false, errors.New("outage longer than half the marker TTL: the bucket is read again first")
	}
	if resume {
		s.resumes.Add(1)
	}
	s.mu.Lock()
	s.consumerName = name
	if s.emptyAtOpen && !s.isSynced {
		s.isSynced = true
		close(s.synced)
	}
	s.mu.Unlock()
	failed := make(chan error, 1)
	fail := func(err error) {
		select {
		case failed <- err:
		default:
		}
	}
	var delivered uint64 // the consumer's delivery sequence: must count up by one
	cc, err := cons.Consume(func(msg jetstream.Msg) {
		md, err := msg.Metadata()
		if err != nil {
			fail(fmt.Errorf("change without metadata: %w", err))
			return
		}
		if md.Sequence.Consumer != delivered+1 {
			fail(fmt.Errorf("delivery %d after %d: a gap", md.Sequence.Consumer, delivered))
			return
		}
		delivered = md.Sequence.Consumer
		s.handle(msg, md)
	},
		jetstream.PullHeartbeat(followHeartbeat), jetstream.PullExpiry(followExpiry),
		jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
			switch {
			case errors.Is(err, jetstream.ErrNoHeartbeat), errors.Is(err, jetstream.ErrConsumerDeleted),
				errors.Is(err, jetstream.ErrConsumerNotFound), errors.Is(err, nats.ErrNoResponders),
				errors.Is(err, nats.ErrConnectionClosed):
				fail(err)
			default:
				s.log.Debug("natsstore: change stream", "err", err)
			}
		}))
	if err != nil {
		return true, fmt.Errorf("consume: %w", err)
	}
	defer func() {
		cc.Stop()
		<-cc.Closed()
	}()
	tick := time.NewTicker(followRetry)
	defer tick.Stop()
	var down time.Time // when the connection was first seen down
	for {
		select {
		case <-ctx.Done():
			return true, ctx.Err()
		case err := <-failed:
			if !down.IsZero() && time.Since(down) > s.markerTTL/2 {
				*lostAt = down
			}
			return true, err
		case <-tick.C:
		}
		switch {
		case s.nc.Status() != nats.CONNECTED:
			if down.IsZero() {
				down = time.Now()
			}
		case !down.IsZero():
			if time.Since(down) > s.markerTTL/2 {
				*lostAt = down
				return true, fmt.Errorf("connection down for %v", time.Since(down).Round(time.Millisecond))
			}
			down = time.Time{}
		}
	}
}

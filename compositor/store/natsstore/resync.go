package natsstore

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/presencehub/presencehub/compositor/store"
)

// A hub cut off from NATS for longer than the markers live (MarkerTTL)
// cannot learn of the removals it missed by resuming: their markers are
// gone. So after an outage longer than half of MarkerTTL the store reads
// the bucket's last message per key again before it resumes, and turns the
// differences into changes: what vanished is a ChangeDelete (ChangeExpire
// when its time had passed), what is newer is applied as usual.

type snapMsg struct {
	key  string
	seq  uint64
	hdr  nats.Header
	data []byte
}

// resync reads the bucket's last message per key and applies what the
// local copy lacks.
func (s *Store) resync(ctx context.Context, streamName string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	info, err := s.stream.Info(ctx)
	if err != nil {
		return fmt.Errorf("stream info: %w", err)
	}
	var snap []snapMsg
	if info.State.Msgs > 0 {
		cons, err := s.js.OrderedConsumer(ctx, streamName, jetstream.OrderedConsumerConfig{
			FilterSubjects: []string{s.prefix + ">"},
			DeliverPolicy:  jetstream.DeliverLastPerSubjectPolicy,
		})
		if err != nil {
			return fmt.Errorf("snapshot consumer: %w", err)
		}
		for done := false; !done; {
			batch, err := cons.Fetch(256, jetstream.FetchMaxWait(2*time.Second))
			if err != nil {
				return fmt.Errorf("snapshot: %w", err)
			}
			n := 0
			for msg := range batch.Messages() {
				n++
				md, err := msg.Metadata()
				if err != nil {
					return fmt.Errorf("snapshot: %w", err)
				}
				snap = append(snap, snapMsg{strings.TrimPrefix(msg.Subject(), s.prefix), md.Sequence.Stream, msg.Headers(), msg.Data()})
				if md.NumPending == 0 {
					done = true
				}
			}
			if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) {
				return fmt.Errorf("snapshot: %w", err)
			}
			if n == 0 {
				done = true // nothing left (the stream emptied meanwhile)
			}
		}
	}
	sort.Slice(snap, func(i, j int) bool { return snap[i].seq < snap[j].seq })

	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return store.ErrClosed
	}
	top := max(s.rev, info.State.LastSeq)
	for _, m := range snap {
		top = max(top, m.seq)
	}
	// What the copy lacks: a newer message keeps its sequence as revision;
	// one the follower skipped over (its sequence is not newer) and keys
	// with no message left are reported at top, after everything else.
	type fix struct {
		key string
		ch  store.Change
	}
	var fixes []fix
	seen := make(map[string]bool, len(snap))
	for _, m := range snap {
		seen[m.key] = true
		cur, have := s.byKey[m.key]
		if have && cur.Rev == m.seq {
			continue // the copy holds exactly this
		}
		ch, ok := s.decode(m.key, m.seq, m.hdr, m.data)
		if !ok {
			continue // a marker of a key the copy does not hold
		}
		if m.seq <= s.rev {
			ch.Rev, ch.Pub.Rev = top, top
		}
		fixes = append(fixes, fix{m.key, ch})
	}
	now := s.now()
	for key, cur := range s.byKey {
		if seen[key] {
			continue
		}
		old := *cur
		kind := store.ChangeDelete
		if !old.Expires.After(now) {
			kind = store.ChangeExpire
		}
		old.Rev = top
		fixes = append(fixes, fix{key, store.Change{Kind: kind, Rev: top, Pub: old}})
	}
	sort.SliceStable(fixes, func(i, j int) bool { return fixes[i].ch.Rev < fixes[j].ch.Rev })
	removed := 0
	for _, f := range fixes {
		if f.ch.Kind != store.ChangePut {
			removed++
		}
		s.applyLocked(f.key, f.ch)
		s.feed.Publish(f.ch)
	}
	s.rev = top
	close(s.advanced)
	s.advanced = make(chan struct{})
	s.resyncs.Add(1)
	s.log.Info("natsstore: bucket read again after a long outage", "keys", len(snap), "changes", len(fixes), "removed", removed, "rev", top)
	return nil
}

package natsstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"

	"github.com/presencehub/presencehub/compositor/store"
	"github.com/presencehub/presencehub/compositor/store/internal/changefeed"
)

// Defaults for Options fields left zero.
const (
	DefaultBucket       = "presencehub"
	DefaultReplicas     = 3
	DefaultMarkerTTL    = 15 * time.Minute
	DefaultWriteTimeout = 2 * time.Second
)

// reasonHeader marks a purge marker written by Expire: the watchers report
// it as store.ChangeExpire instead of store.ChangeDelete.
const (
	reasonHeader = "Presencehub-Reason"
	reasonExpire = "expire"
)

// catchUpWait bounds how long a read that missed waits for the local copy
// to reach the stream's last sequence. A copy still behind after it makes
// the read busy (503 + Retry-After), never "not found" (412 for a valid
// entity-tag): under load a change stream that lost its consumer takes
// seconds to resume.
const catchUpWait = 5 * time.Second

// ownWriteWait bounds how long a write waits for the local copy to apply
// it before returning.
const ownWriteWait = 500 * time.Millisecond

// Options configure Open. Conn is required.
type Options struct {
	Conn *nats.Conn // the caller closes it after Close
	// Bucket is the Key-Value bucket name; default "presencehub".
	Bucket string
	// Replicas of the bucket when Open creates it; default 3.
	Replicas int
	// MarkerTTL is how long expiry and delete markers stay in the bucket: a
	// hub that is cut off longer than that no longer learns of the removals
	// it missed by resuming (it still hides expired state from readers).
	// Default 15 minutes; at least a second.
	MarkerTTL time.Duration
	// WriteTimeout bounds one write; past it the write is store.ErrBusy.
	// Default 2s.
	WriteTimeout time.Duration
	Now          func() time.Time // clock for reads and TTLs; default time.Now
	Logger       *slog.Logger
}

// Stats are counters for metrics.
type Stats struct {
	// Rev is the last stream sequence the local copy applied.
	Rev uint64
	// Lag is how long the last applied change took from its commit on the
	// stream to this store's copy (replication lag as seen by this node).
	Lag time.Duration
	// Resumes counts how often the change stream was resumed from the next
	// sequence after a lost consumer or a reconnect.
	Resumes uint64
	// Resyncs counts how often the bucket was read again after an outage
	// longer than half of MarkerTTL (resync.go).
	Resyncs uint64
}

// Store is a store.Store on a JetStream Key-Value bucket.
type Store struct {
	nc           *nats.Conn
	js           jetstream.JetStream
	stream       jetstream.Stream
	prefix       string // "$KV.<bucket>."
	now          func() time.Time
	log          *slog.Logger
	markerTTL    time.Duration
	writeTimeout time.Duration
	feed         *changefeed.Feed
	stopFollow   context.CancelFunc
	followDone   chan struct{}

	mu           sync.Mutex
	rev          uint64                        // last stream sequence applied
	byKey        map[string]*store.Publication // key -> publication (Rev set)
	byID         map[string]string             // id -> key
	etags        map[string]string             // entity-tag -> id
	advanced     chan struct{}                 // closed (and replaced) when rev moves
	synced       chan struct{}                 // closed once the first catch-up is done
	isSynced     bool
	consumerName string // the consumer following the bucket now
	emptyAtOpen  bool
	closed       bool

	settleCtx  context.Context // ends at Close: in-doubt writes stop being settled
	stopSettle context.CancelFunc
	settling   sync.WaitGroup
	inDoubt    atomic.Int64

	resumes atomic.Uint64
	resyncs atomic.Uint64
	lagNS   atomic.Int64
}

var _ store.Store = (*Store)(nil)

// Open creates or updates the bucket, reads it through and starts
// following it. ctx bounds the start.
func Open(ctx context.Context, opts Options) (*Store, error) {
	if opts.Conn == nil {
		return nil, errors.New("natsstore: Options.Conn is required")
	}
	if opts.Bucket == "" {
		opts.Bucket = DefaultBucket
	}
	if opts.Replicas <= 0 {
		opts.Replicas = DefaultReplicas
	}
	if opts.MarkerTTL <= 0 {
		opts.MarkerTTL = DefaultMarkerTTL
	}
	opts.MarkerTTL = max(opts.MarkerTTL, time.Second)
	if opts.WriteTimeout <= 0 {
		opts.WriteTimeout = DefaultWriteTimeout
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	js, err := jetstream.New(opts.Conn)
	if err != nil {
		return nil, fmt.Errorf("natsstore: jetstream: %w", err)
	}
	_, err = js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:         opts.Bucket,
		Description:    "presencehub publications (RFC 3903 event state)",
		History:        1,
		Replicas:       opts.Replicas,
		Storage:        jetstream.FileStorage,
		LimitMarkerTTL: opts.MarkerTTL,
	})
	if err != nil {
		return nil, fmt.Errorf("natsstore: bucket %q: %w", opts.Bucket, err)
	}
	streamName := "KV_" + opts.Bucket
	stream, err := js.Stream(ctx, streamName)
	if err != nil {
		return nil, fmt.Errorf("natsstore: stream %q: %w", streamName, err)
	}
	s := &Store{
		nc:           opts.Conn,
		js:           js,
		stream:       stream,
		prefix:       "$KV." + opts.Bucket + ".",
		now:          opts.Now,
		log:          opts.Logger,
		markerTTL:    opts.MarkerTTL,
		writeTimeout: opts.WriteTimeout,
		feed:         changefeed.New(),
		byKey:        map[string]*store.Publication{},
		byID:         map[string]string{},
		etags:        map[string]string{},
		advanced:     make(chan struct{}),
		synced:       make(chan struct{}),
	}
	info, err := stream.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("natsstore: stream %q: %w", streamName, err)
	}
	// An empty bucket is read through once the consumer exists.
	s.emptyAtOpen = info.State.Msgs == 0
	s.settleCtx, s.stopSettle = context.WithCancel(context.Background())
	fctx, stop := context.WithCancel(context.Background())
	s.stopFollow, s.followDone = stop, make(chan struct{})
	go s.follow(fctx, streamName, s.followDone)
	select {
	case <-s.synced:
	case <-ctx.Done():
		s.Close()
		return nil, fmt.Errorf("natsstore: reading bucket %q: %w", opts.Bucket, ctx.Err())
	}
	return s, nil
}

// handle applies one message of the change stream (the consumer's
// delivery goroutine calls it, in sequence order).
func (s *Store) handle(msg jetstream.Msg, md *jetstream.MsgMetadata) {
	seq := md.Sequence.Stream
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || seq <= s.rev {
		return // a message seen before a resume: never apply twice
	}
	s.lagNS.Store(int64(time.Since(md.Timestamp)))
	key := strings.TrimPrefix(msg.Subject(), s.prefix)
	if ch, ok := s.decode(key, seq, msg.Headers(), msg.Data()); ok {
		s.applyLocked(key, ch)
		s.rev = seq
		s.feed.Publish(ch)
	} else {
		s.rev = seq
	}
	close(s.advanced)
	s.advanced = make(chan struct{})
	if !s.isSynced && md.NumPending == 0 {
		s.isSynced = true
		close(s.synced)
	}
}

// decode turns a stream message into a change; ok is false for a marker
// of a key this store does not hold (nothing to remove) or a value it
// cannot read.
func (s *Store) decode(key string, seq uint64, h nats.Header, data []byte) (store.Change, bool) {
	kind := store.ChangePut
	switch {
	case h.Get(jetstream.MarkerReasonHeader) == "MaxAge":
		kind = store.ChangeExpire
	case h.Get(jetstream.MarkerReasonHeader) != "", h.Get("KV-Operation") != "":
		kind = store.ChangeDelete
		if h.Get(reasonHeader) == reasonExpire {
			kind = store.ChangeExpire
		}
	}
	if kind != store.ChangePut {
		old, ok := s.byKey[key]
		if !ok {
			return store.Change{}, false
		}
		gone := *old
		gone.Rev = seq
		return store.Change{Kind: kind, Rev: seq, Pub: gone}, true
	}
	var p store.Publication
	if err := json.Unmarshal(data, &p); err != nil {
		s.log.Warn("natsstore: unreadable publication", "key", key, "rev", seq, "err", err)
		return store.Change{}, false
	}
	p.Rev = seq
	return store.Change{Kind: store.ChangePut, Rev: seq, Pub: p}, true
}

func (s *Store) applyLocked(key string, ch store.Change) {
	if old, ok := s.byKey[key]; ok {
		delete(s.etags, old.ETag)
		delete(s.byID, old.ID)
		delete(s.byKey, key)
	}
	if ch.Kind != store.ChangePut {
		return
	}
	p := ch.Pub
	s.byKey[key] = &p
	s.byID[p.ID] = key
	s.etags[p.ETag] = p.ID
}

func clone(p store.Publication) store.Publication {
	p.Body = append([]byte(nil), p.Body...)
	p.Meta = append([]byte(nil), p.Meta...)
	return p
}

// waitRev waits until the local copy applied rev, at most d, and says
// whether it did.
func (s *Store) waitRev(ctx context.Context, rev uint64, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	for {
		s.mu.Lock()
		if s.rev >= rev || s.closed {
			s.mu.Unlock()
			return true
		}
		adv := s.advanced
		s.mu.Unlock()
		select {
		case <-adv:
		case <-t.C:
			return false
		case <-ctx.Done():
			return false
		}
	}
}

// catchUp waits until the local copy holds every change the stream
// committed before the call.
func (s *Store) catchUp(ctx context.Context) error {
	info, err := s.stream.Info(ctx)
	if err != nil {
		return fmt.Errorf("stream info: %w: %w", store.ErrBusy, err)
	}
	if !s.waitRev(ctx, info.State.LastSeq, catchUpWait) {
		return fmt.Errorf("local copy behind the stream (sequence %d): %w", info.State.LastSeq, store.ErrBusy)
	}
	return nil
}

// find returns the publication id from the local copy; on a miss it
// catches up with the stream once and looks again.
func (s *Store) find(ctx context.Context, id string) (store.Publication, string, error) {
	for attempt := 0; ; attempt++ {
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			return store.Publication{}, "", store.ErrClosed
		}
		key, ok := s.byID[id]
		if ok {
			p := *s.byKey[key]
			s.mu.Unlock()
			if !p.Expires.After(s.now()) {
				return store.Publication{}, "", store.ErrNotFound
			}
			return p, key, nil
		}
		s.mu.Unlock()
		if attempt > 0 {
			return store.Publication{}, "", store.ErrNotFound
		}
		if err := s.catchUp(ctx); err != nil {
			return store.Publication{}, "", err
		}
	}
}

// Get implements store.Store.
func (s *Store) Get(ctx context.Context, id string) (store.Publication, error) {
	p, _, err := s.find(ctx, id)
	if err != nil {
		return store.Publication{}, fmt.Errorf("natsstore: get %q: %w", id, err)
	}
	return clone(p), nil
}

// FindByETag implements store.Store.
func (s *Store) FindByETag(ctx context.Context, resource, etag string) (store.Publication, error) {
	for attempt := 0; ; attempt++ {
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			return store.Publication{}, store.ErrClosed
		}
		id, ok := s.etags[etag]
		var p store.Publication
		if ok {
			p = *s.byKey[s.byID[id]]
		}
		s.mu.Unlock()
		if ok {
			if p.Resource != resource || !p.Expires.After(s.now()) {
				break
			}
			return clone(p), nil
		}
		if attempt > 0 {
			break
		}
		if err := s.catchUp(ctx); err != nil {
			return store.Publication{}, fmt.Errorf("natsstore: find %s etag %q: %w", resource, etag, err)
		}
	}
	return store.Publication{}, fmt.Errorf("natsstore: find %s etag %q: %w", resource, etag, store.ErrNotFound)
}

// List implements store.Store.
func (s *Store) List(ctx context.Context, resource string) ([]store.Publication, error) {
	if err := s.catchUp(ctx); err != nil {
		return nil, fmt.Errorf("natsstore: list %q: %w", resource, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, store.ErrClosed
	}
	return s.listLocked(resource), nil
}

func (s *Store) listLocked(resource string) []store.Publication {
	now := s.now()
	var out []store.Publication
	for _, p := range s.byKey {
		if (resource == "" || p.Resource == resource) && p.Expires.After(now) {
			out = append(out, clone(*p))
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Rev < out[j].Rev })
	return out
}

// ttl is the per-message TTL for a publication expiring at exp: whole
// seconds (what the server counts in), rounded up, at least one.
func (s *Store) ttl(exp time.Time) time.Duration {
	d := exp.Sub(s.now())
	secs := (d + time.Second - 1) / time.Second
	return max(secs, 1) * time.Second
}

// write publishes one message with a compare-and-swap on the key's last
// revision, then waits (briefly) for the local copy to apply it so that
// the caller reads its own write.
func (s *Store) write(ctx context.Context, key string, hdr nats.Header, data []byte, ifRev uint64, ttl time.Duration, u undo) (uint64, error) {
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed {
		return 0, store.ErrClosed
	}
	m := &nats.Msg{Subject: s.prefix + key, Header: hdr, Data: data}
	if m.Header == nil {
		m.Header = nats.Header{}
	}
	// The same message, sent again, is recognised by its id: that is how
	// a write whose answer was lost is settled (settle).
	m.Header.Set(jetstream.MsgIDHeader, nuid.Next())
	m.Header.Set(jetstream.ExpectedLastSubjSeqHeader, strconv.FormatUint(ifRev, 10))
	if ttl > 0 {
		m.Header.Set(jetstream.MsgTTLHeader, ttl.String())
	}
	wctx, cancel := context.WithTimeout(ctx, s.writeTimeout)
	ack, err := s.publish(wctx, m)
	cancel()
	switch outcomeOf(err) {
	case landed:
	case conflict:
		return 0, fmt.Errorf("%w: %w", store.ErrConflict, err)
	case refused:
		return 0, fmt.Errorf("%w: %w", store.ErrBusy, err)
	default:
		// No answer in time (a leader election): the write may still be
		// stored. The caller hears "busy"; settle makes that true.
		s.settle(m, u)
		return 0, fmt.Errorf("%w: %w", store.ErrBusy, err)
	}
	// Usually a millisecond; bounded so that a change stream being resumed
	// (its server died) does not hold the caller: reads that miss catch up.
	_ = s.waitRev(ctx, ack.Sequence, ownWriteWait)
	return ack.Sequence, nil
}

func encode(p store.Publication) ([]byte, error) {
	p.Rev = 0
	return json.Marshal(p)
}

// Create implements store.Store.
func (s *Store) Create(ctx context.Context, p store.Publication) (store.Publication, error) {
	s.mu.Lock()
	_, dupTag := s.etags[p.ETag]
	s.mu.Unlock()
	if dupTag {
		return store.Publication{}, fmt.Errorf("natsstore: create %q: etag exists: %w", p.ID, store.ErrConflict)
	}
	p.Rev = 0
	data, err := encode(p)
	if err != nil {
		return store.Publication{}, fmt.Errorf("natsstore: create %q: %w", p.ID, err)
	}
	rev, err := s.write(ctx, pubKey(p.Resource, p.Event, p.ID), nil, data, 0, s.ttl(p.Expires), undo{})
	if err != nil {
		return store.Publication{}, fmt.Errorf("natsstore: create %q: %w", p.ID, err)
	}
	p = clone(p)
	p.Rev = rev
	return p, nil
}

// Replace implements store.Store.
func (s *Store) Replace(ctx context.Context, p store.Publication, ifRev uint64) (store.Publication, error) {
	old, key, err := s.find(ctx, p.ID)
	if err != nil {
		return store.Publication{}, fmt.Errorf("natsstore: replace %q: %w", p.ID, err)
	}
	if key != pubKey(p.Resource, p.Event, p.ID) {
		return store.Publication{}, fmt.Errorf("natsstore: replace %q: resource or event changed: %w", p.ID, store.ErrConflict)
	}
	if old.Rev != ifRev {
		// The local copy may lag; the compare-and-swap below decides.
		s.log.Debug("natsstore: replace of a revision not yet seen", "id", p.ID, "have", old.Rev, "if", ifRev)
	}
	s.mu.Lock()
	id, dupTag := s.etags[p.ETag]
	s.mu.Unlock()
	if dupTag && id != p.ID {
		return store.Publication{}, fmt.Errorf("natsstore: replace %q: etag exists: %w", p.ID, store.ErrConflict)
	}
	data, err := encode(p)
	if err != nil {
		return store.Publication{}, fmt.Errorf("natsstore: replace %q: %w", p.ID, err)
	}
	rev, err := s.write(ctx, key, nil, data, ifRev, s.ttl(p.Expires), undoTo(old, ifRev))
	if err != nil {
		return store.Publication{}, fmt.Errorf("natsstore: replace %q: %w", p.ID, err)
	}
	p = clone(p)
	p.Rev = rev
	return p, nil
}

// remove writes a purge marker for key if its revision is ifRev; u says
// what to do if its answer is lost and it turns out stored.
func (s *Store) remove(ctx context.Context, key string, ifRev uint64, expire bool, u undo) (uint64, error) {
	hdr := nats.Header{}
	hdr.Set("KV-Operation", "PURGE")
	hdr.Set(jetstream.MsgRollup, jetstream.MsgRollupSubject)
	if expire {
		hdr.Set(reasonHeader, reasonExpire)
	}
	return s.write(ctx, key, hdr, nil, ifRev, s.markerTTL, u)
}

// Delete implements store.Store.
func (s *Store) Delete(ctx context.Context, id string, ifRev uint64) (uint64, error) {
	old, key, err := s.find(ctx, id)
	if err != nil {
		return 0, fmt.Errorf("natsstore: delete %q: %w", id, err)
	}
	rev, err := s.remove(ctx, key, ifRev, false, undoTo(old, ifRev))
	if err != nil {
		return 0, fmt.Errorf("natsstore: delete %q: %w", id, err)
	}
	return rev, nil
}

// DeleteAll implements store.Store.
func (s *Store) DeleteAll(ctx context.Context) error {
	for round := 0; round < 3; round++ {
		all, err := s.List(ctx, "")
		if err != nil {
			return err
		}
		if len(all) == 0 {
			return nil
		}
		for _, p := range all {
			_, err := s.remove(ctx, pubKey(p.Resource, p.Event, p.ID), p.Rev, false, undo{keep: true})
			if err != nil && !errors.Is(err, store.ErrConflict) {
				return fmt.Errorf("natsstore: delete all: %q: %w", p.ID, err)
			}
		}
	}
	return nil
}

// Expire implements store.Store. The server expires publications by
// their TTL on its own; Expire removes those the store's clock already
// sees as expired (a clock set by a test, or a TTL not yet processed).
// Each removal is a compare-and-swap, so a publication is expired once
// even when several hubs call Expire.
func (s *Store) Expire(ctx context.Context) (int, error) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return 0, store.ErrClosed
	}
	now := s.now()
	type victim struct {
		key string
		rev uint64
	}
	var gone []victim
	for key, p := range s.byKey {
		if !p.Expires.After(now) {
			gone = append(gone, victim{key, p.Rev})
		}
	}
	s.mu.Unlock()
	sort.Slice(gone, func(i, j int) bool { return gone[i].rev < gone[j].rev })
	n := 0
	for _, v := range gone {
		_, err := s.remove(ctx, v.key, v.rev, true, undo{keep: true})
		switch {
		case err == nil:
			n++
		case errors.Is(err, store.ErrConflict):
			// Changed or expired by the server or another hub meanwhile.
		default:
			return n, fmt.Errorf("natsstore: expire: %w", err)
		}
	}
	return n, nil
}

// Changes implements store.Store.
func (s *Store) Changes(ctx context.Context, fromRev uint64) (<-chan store.Change, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, store.ErrClosed
	}
	return s.feed.Watch(ctx, fromRev, s.rev, func() ([]store.Publication, error) {
		return s.listLocked(""), nil
	})
}

// Ping implements store.Store: the connection is up and the bucket's
// stream answers.
func (s *Store) Ping(ctx context.Context) error {
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed {
		return store.ErrClosed
	}
	if st := s.nc.Status(); st != nats.CONNECTED {
		return fmt.Errorf("natsstore: connection %s: %w", st, store.ErrBusy)
	}
	if _, err := s.stream.Info(ctx); err != nil {
		return fmt.Errorf("natsstore: stream: %w: %w", store.ErrBusy, err)
	}
	return nil
}

// Stats returns the counters for metrics.
func (s *Store) Stats() Stats {
	s.mu.Lock()
	rev := s.rev
	s.mu.Unlock()
	return Stats{Rev: rev, Lag: time.Duration(s.lagNS.Load()), Resumes: s.resumes.Load(), Resyncs: s.resyncs.Load()}
}

// ReplicationLag is how long the last applied change took from its commit
// on the stream to this store's copy.
func (s *Store) ReplicationLag() time.Duration { return time.Duration(s.lagNS.Load()) }

// WatchResumes counts how often the change stream resumed from the next
// sequence after a lost consumer or a reconnect (or was read again after
// a long outage).
func (s *Store) WatchResumes() uint64 { return s.resumes.Load() + s.resyncs.Load() }

// WritesInDoubt is how many writes answered busy are being settled now
// (resent until JetStream says whether it stored them).
func (s *Store) WritesInDoubt() int64 { return s.inDoubt.Load() }

// Close implements store.Store. It does not close the connection.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	close(s.advanced)
	s.advanced = make(chan struct{})
	s.mu.Unlock()
	if s.stopSettle != nil {
		s.stopSettle()
	}
	s.settling.Wait()
	if s.stopFollow != nil {
		s.stopFollow()
		<-s.followDone
	}
	s.feed.Close()
	return nil
}

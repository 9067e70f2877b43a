package natsreg

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/presencehub/presencehub/server/registrar"
)

// Defaults for Options fields left zero.
const (
	DefaultBucket   = "presencehub_registrations"
	DefaultReplicas = 3
	// markerTTL is how long the bucket keeps the marker of an expired
	// record (required for per-message TTLs; nothing reads the markers).
	markerTTL = time.Second
)

// Options configure Open. Conn is required.
type Options struct {
	Conn     *nats.Conn
	Bucket   string // default DefaultBucket
	Replicas int    // when the bucket is created; default DefaultReplicas
}

// Store is a registrar.Store on a JetStream Key-Value bucket.
type Store struct {
	js     jetstream.JetStream
	stream jetstream.Stream
	prefix string // "$KV.<bucket>."
}

var _ registrar.Store = (*Store)(nil)

// Open creates or updates the bucket. It does not own the connection.
func Open(ctx context.Context, opts Options) (*Store, error) {
	if opts.Conn == nil {
		return nil, errors.New("natsreg: Options.Conn is required")
	}
	if opts.Bucket == "" {
		opts.Bucket = DefaultBucket
	}
	if opts.Replicas <= 0 {
		opts.Replicas = DefaultReplicas
	}
	js, err := jetstream.New(opts.Conn)
	if err != nil {
		return nil, fmt.Errorf("natsreg: jetstream: %w", err)
	}
	_, err = js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:         opts.Bucket,
		Description:    "presencehub REGISTER bindings (RFC 3261 §10), one key per AOR",
		History:        1,
		Replicas:       opts.Replicas,
		Storage:        jetstream.FileStorage,
		LimitMarkerTTL: markerTTL,
	})
	if err != nil {
		return nil, fmt.Errorf("natsreg: bucket %q: %w", opts.Bucket, err)
	}
	stream, err := js.Stream(ctx, "KV_"+opts.Bucket)
	if err != nil {
		return nil, fmt.Errorf("natsreg: stream of bucket %q: %w", opts.Bucket, err)
	}
	return &Store{js: js, stream: stream, prefix: "$KV." + opts.Bucket + "."}, nil
}

// key is the bucket key of aor: base64url, so any AOR is one subject token.
func key(aor string) string { return base64.RawURLEncoding.EncodeToString([]byte(aor)) }

// wire is a binding as stored.
type wire struct {
	Contact  string    `json:"contact"` // the Contact header value, without expires
	Instance string    `json:"instance,omitempty"`
	RegID    string    `json:"reg_id,omitempty"`
	Node     string    `json:"node"`
	FlowID   uint64    `json:"flow"`
	Expires  time.Time `json:"expires"`
	CallID   string    `json:"call_id"`
}

// Load implements registrar.Store. A record removed or expired reads as
// none, at the revision of its marker.
func (s *Store) Load(ctx context.Context, aor string) ([]registrar.Binding, uint64, error) {
	msg, err := s.stream.GetLastMsgForSubject(ctx, s.prefix+key(aor))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, fmt.Errorf("natsreg: load %s: %w", aor, err)
	}
	if op := msg.Header.Get("KV-Operation"); op != "" || msg.Header.Get("Nats-Marker-Reason") != "" || len(msg.Data) == 0 {
		return nil, msg.Sequence, nil
	}
	var ws []wire
	if err := json.Unmarshal(msg.Data, &ws); err != nil {
		return nil, 0, fmt.Errorf("natsreg: decode %s: %w", aor, err)
	}
	out := make([]registrar.Binding, 0, len(ws))
	for _, w := range ws {
		b := registrar.Binding{AOR: aor, Instance: w.Instance, RegID: w.RegID, Node: w.Node, FlowID: w.FlowID, Expires: w.Expires, CallID: w.CallID}
		name, err := sip.ParseAddressValue(w.Contact, &b.Contact.Address, &b.Contact.Params)
		if err != nil {
			return nil, 0, fmt.Errorf("natsreg: decode %s: contact %q: %w", aor, w.Contact, err)
		}
		b.Contact.DisplayName = name
		out = append(out, b)
	}
	return out, msg.Sequence, nil
}

// Save implements registrar.Store: one message, compare-and-swap on the
// key's last sequence, with a per-message TTL of keep (whole seconds,
// rounded up). A write whose answer does not come is reported as an
// error: the client registers again, replacing it, or it expires.
func (s *Store) Save(ctx context.Context, aor string, bindings []registrar.Binding, rev uint64, keep time.Duration) error {
	m := &nats.Msg{Subject: s.prefix + key(aor), Header: nats.Header{}}
	m.Header.Set(jetstream.ExpectedLastSubjSeqHeader, strconv.FormatUint(rev, 10))
	if len(bindings) == 0 {
		m.Header.Set("KV-Operation", "PURGE")
		m.Header.Set(jetstream.MsgRollup, jetstream.MsgRollupSubject)
		keep = markerTTL
	} else {
		ws := make([]wire, len(bindings))
		for i, b := range bindings {
			ws[i] = wire{Contact: b.Contact.Value(), Instance: b.Instance, RegID: b.RegID, Node: b.Node, FlowID: b.FlowID, Expires: b.Expires.UTC(), CallID: b.CallID}
		}
		data, err := json.Marshal(ws)
		if err != nil {
			return fmt.Errorf("natsreg: encode %s: %w", aor, err)
		}
		m.Data = data
	}
	secs := max((keep+time.Second-1)/time.Second, 1)
	m.Header.Set(jetstream.MsgTTLHeader, (secs * time.Second).String())
	_, err := s.js.PublishMsg(ctx, m, jetstream.WithRetryAttempts(20), jetstream.WithRetryWait(100*time.Millisecond))
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
		apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant) {
		return fmt.Errorf("%w: %w", registrar.ErrConflict, err)
	}
	if err != nil {
		return fmt.Errorf("natsreg: save %s: %w", aor, err)
	}
	return nil
}

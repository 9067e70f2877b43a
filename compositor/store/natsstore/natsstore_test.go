package natsstore_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/presencehub/presencehub/compositor/store"
	"github.com/presencehub/presencehub/compositor/store/natsstore"
	"github.com/presencehub/presencehub/compositor/store/storetest"
	"github.com/presencehub/presencehub/internal/natstest"
)

var bucketSeq atomic.Int64

func connect(t *testing.T, url string) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(url, nats.ReconnectWait(100*time.Millisecond), nats.MaxReconnects(-1), nats.DontRandomize())
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(nc.Close)
	return nc
}

func open(t *testing.T, nc *nats.Conn, bucket string, now func() time.Time) *natsstore.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s, err := natsstore.Open(ctx, natsstore.Options{Conn: nc, Bucket: bucket, Replicas: 3, Now: now})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return s
}

// The same conformance suite as SQLite and memory, against a real
// three-server JetStream cluster with R3 buckets.
func TestConformance_ThreeNodeCluster(t *testing.T) {
	c := natstest.Start(t, 3)
	nc := connect(t, c.URL())
	storetest.Run(t, func(t *testing.T, now func() time.Time) store.Store {
		return open(t, nc, fmt.Sprintf("conf%d", bucketSeq.Add(1)), now)
	})
}

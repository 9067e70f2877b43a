package loadgen_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/presencehub/presencehub/compositor/store/natsstore"
	"github.com/presencehub/presencehub/internal/loadgen"
	"github.com/presencehub/presencehub/internal/natstest"
	"github.com/presencehub/presencehub/server"
	"github.com/presencehub/presencehub/server/servertest"
)

// Publishers on one hub, subscribers on another, both on one NATS
// JetStream store: every check passes and the latency measured is
// PUBLISH on hub A → NOTIFY from hub B.
func TestRun_AcrossHubs_PublishersOnOneSubscribersOnAnother(t *testing.T) {
	c := natstest.Start(t, 3)
	secret := make([]byte, 32)
	_, _ = rand.Read(secret)
	hub := func(srv int, node string) *servertest.Hub {
		nc, err := nats.Connect(c.ServerURL(srv)+","+c.URL(), nats.DontRandomize(), nats.MaxReconnects(-1))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(nc.Close)
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		st, err := natsstore.Open(ctx, natsstore.Options{Conn: nc, Bucket: "bench", Replicas: 3})
		if err != nil {
			t.Fatal(err)
		}
		return servertest.Start(t, servertest.Options{Store: st, Secret: secret, Configure: func(cfg *server.Config) {
			cfg.NodeID, cfg.RequestsPerSecond = node, 100000
		}})
	}
	a, b := hub(0, "a"), hub(1, "b")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	res, err := loadgen.Run(ctx, loadgen.Config{
		Hub: b.WS, SubscribeHubs: []string{b.WS}, PublishHub: a.WS, Domain: servertest.Domain, Token: tokens(a),
		Subscribers: 3, SubsPerSocket: 8, Resources: 10, Publishers: 2,
		Duration: 500 * time.Millisecond, Window: 4,
	})
	if err != nil {
		t.Fatal(err)
	}
	var human bytes.Buffer
	res.WriteHuman(&human)
	if !res.OK || res.PublishOK == 0 || res.Latency.Samples == 0 || res.PublishHub != a.WS {
		t.Fatalf("run across hubs:\n%s", human.String())
	}
	if n := b.Server.Notifier().Count()["dialog"]; n != 24 {
		t.Fatalf("hub B holds %d subscriptions during the run, want 24", n)
	}
	t.Logf("\n%s", human.String())
}

package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/presencehub/presencehub/compositor/store/natsstore"
	"github.com/presencehub/presencehub/server/registrar/natsreg"
)

// natsStartTimeout bounds connecting to NATS and reading the bucket at
// start (NATS may come up after the hub, as in docker compose).
const natsStartTimeout = 60 * time.Second

// natsAttemptTimeout bounds one attempt to open the bucket at start.
const natsAttemptTimeout = 10 * time.Second

// connStore is a natsstore.Store that owns its connection.
type connStore struct {
	*natsstore.Store
	nc *nats.Conn
}

func (s connStore) Close() error {
	err := s.Store.Close()
	s.nc.Close()
	return err
}

// openNATSStore connects to NATS (retrying until natsStartTimeout) and
// opens the shared publication bucket.
func openNATSStore(ctx context.Context, c *config, log *slog.Logger) (connStore, error) {
	ctx, cancel := context.WithTimeout(ctx, natsStartTimeout)
	defer cancel()
	opts := []nats.Option{
		nats.Name("presencehub " + c.NodeID),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			log.Warn("nats: disconnected", "err", err)
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) { log.Info("nats: reconnected", "server", nc.ConnectedUrlRedacted()) }),
	}
	var nc *nats.Conn
	var err error
	for {
		nc, err = nats.Connect(c.NATSURL, opts...)
		if err == nil {
			break
		}
		log.Warn("nats: connect failed; retrying", "url", c.NATSURL, "err", err)
		select {
		case <-ctx.Done():
			return connStore{}, fmt.Errorf("connect to NATS %s: %w", c.NATSURL, err)
		case <-time.After(time.Second):
		}
	}
	for {
		// One attempt is bounded: a JetStream request sent before the
		// cluster elected its meta leader gets no answer at all.
		actx, cancel := context.WithTimeout(ctx, natsAttemptTimeout)
		st, err := natsstore.Open(actx, natsstore.Options{Conn: nc, Bucket: c.NATSBucket, Replicas: c.NATSReplicas, Logger: log})
		cancel()
		if err == nil {
			return connStore{Store: st, nc: nc}, nil
		}
		log.Warn("nats: open bucket failed; retrying", "bucket", c.NATSBucket, "err", err)
		select {
		case <-ctx.Done():
			nc.Close()
			return connStore{}, fmt.Errorf("open NATS bucket %s: %w", c.NATSBucket, err)
		case <-time.After(time.Second):
		}
	}
}

// openNATSRegistrations opens the bucket of REGISTER bindings shared by the
// hubs, "<bucket>_registrations", retrying until natsStartTimeout.
func openNATSRegistrations(ctx context.Context, nc *nats.Conn, c *config, log *slog.Logger) (*natsreg.Store, error) {
	ctx, cancel := context.WithTimeout(ctx, natsStartTimeout)
	defer cancel()
	bucket := c.NATSBucket + "_registrations"
	for {
		actx, acancel := context.WithTimeout(ctx, natsAttemptTimeout)
		st, err := natsreg.Open(actx, natsreg.Options{Conn: nc, Bucket: bucket, Replicas: c.NATSReplicas})
		acancel()
		if err == nil {
			return st, nil
		}
		log.Warn("nats: open bucket failed; retrying", "bucket", bucket, "err", err)
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("open NATS bucket %s: %w", bucket, err)
		case <-time.After(time.Second):
		}
	}
}

package natstest

import (
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// Cluster is an embedded JetStream cluster. Its methods are safe for
// concurrent use.
type Cluster struct {
	t    testing.TB
	name string

	mu      sync.Mutex
	opts    []*server.Options
	servers []*server.Server // nil while stopped
}

// Start starts an n-server JetStream cluster and waits until it has a meta
// leader that knows every peer. The cluster is shut down by t.Cleanup.
func Start(t testing.TB, n int) *Cluster {
	t.Helper()
	ports := freePorts(t, 2*n)
	routes := make([]string, n)
	for i := range n {
		routes[i] = fmt.Sprintf("nats-route://127.0.0.1:%d", ports[n+i])
	}
	c := &Cluster{t: t, name: "presencehub-test"}
	dir := t.TempDir()
	for i := range n {
		o := &server.Options{
			ServerName:         fmt.Sprintf("n%d", i+1),
			Host:               "127.0.0.1",
			Port:               ports[i],
			NoLog:              true,
			NoSigs:             true,
			JetStream:          true,
			JetStreamMaxMemory: 64 << 20,
			JetStreamMaxStore:  256 << 20,
			StoreDir:           filepath.Join(dir, fmt.Sprintf("n%d", i+1)),
			Cluster: server.ClusterOpts{
				Name: c.name,
				Host: "127.0.0.1",
				Port: ports[n+i],
			},
			Routes: server.RoutesFromStr(strings.Join(routes, ",")),
		}
		c.opts = append(c.opts, o)
	}
	c.servers = make([]*server.Server, n)
	t.Cleanup(c.Shutdown)
	for i := range n {
		c.startLocked(i)
	}
	c.WaitReady(30 * time.Second)
	return c
}

// freePorts returns n distinct free TCP ports on 127.0.0.1. The ports are
// released before the servers bind them (a small window another process
// could take one in; acceptable for tests).
func freePorts(t testing.TB, n int) []int {
	t.Helper()
	ls := make([]net.Listener, 0, n)
	ports := make([]int, 0, n)
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("natstest: reserve port: %v", err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	for _, l := range ls {
		l.Close()
	}
	return ports
}

func (c *Cluster) startLocked(i int) {
	c.t.Helper()
	s, err := server.NewServer(c.opts[i])
	if err != nil {
		c.t.Fatalf("natstest: server %d: %v", i, err)
	}
	go s.Start()
	if !s.ReadyForConnections(15 * time.Second) {
		s.Shutdown()
		c.t.Fatalf("natstest: server %d not ready", i)
	}
	c.servers[i] = s
}

// WaitReady waits until the cluster has a JetStream meta leader that sees
// every running server.
func (c *Cluster) WaitReady(timeout time.Duration) {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		c.mu.Lock()
		running := 0
		ready := false
		for _, s := range c.servers {
			if s == nil {
				continue
			}
			running++
			if s.JetStreamIsLeader() && len(s.JetStreamClusterPeers()) >= len(c.servers) {
				ready = true
			}
		}
		c.mu.Unlock()
		if ready && running > 0 {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	c.t.Fatalf("natstest: no JetStream meta leader within %v", timeout)
}

// URL returns the client URLs of every server, comma-separated (what
// nats.Connect takes), including stopped ones so a client reconnects when
// they come back.
func (c *Cluster) URL() string {
	urls := make([]string, len(c.opts))
	for i, o := range c.opts {
		urls[i] = fmt.Sprintf("nats://127.0.0.1:%d", o.Port)
	}
	return strings.Join(urls, ",")
}

// Size is the number of servers, running or not.
func (c *Cluster) Size() int { return len(c.opts) }

// StreamLeader returns the index of the server leading the stream in the
// global account, or -1 when none does right now.
func (c *Cluster) StreamLeader(stream string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, s := range c.servers {
		if s != nil && s.JetStreamIsStreamLeader(server.DEFAULT_GLOBAL_ACCOUNT, stream) {
			return i
		}
	}
	return -1
}

// Stop shuts server i down: its client and route connections are cut at
// once, but it first hands over the raft leaderships it holds, so the new
// leaders are elected quickly. (After a real crash the peers wait for the
// raft election timeout, 4-9 s; that is measured with separate processes,
// see README "Several hubs".)
func (c *Cluster) Stop(i int) {
	c.mu.Lock()
	s := c.servers[i]
	c.servers[i] = nil
	c.mu.Unlock()
	if s != nil {
		s.Shutdown()
		s.WaitForShutdown()
	}
}

// Restart starts a stopped server i again on its ports with its data.
func (c *Cluster) Restart(i int) {
	c.t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.servers[i] != nil {
		return
	}
	c.startLocked(i)
}

// Shutdown stops every server.
func (c *Cluster) Shutdown() {
	for i := range c.servers {
		c.Stop(i)
	}
}

// ServerURL returns the client URL of server i.
func (c *Cluster) ServerURL(i int) string {
	return fmt.Sprintf("nats://127.0.0.1:%d", c.opts[i].Port)
}

// Package natstest starts an embedded NATS JetStream cluster for tests:
// n servers in one process, each on 127.0.0.1 with random client and
// cluster ports and its JetStream store under t.TempDir(). Servers can be
// stopped abruptly (the NATS leader "killed") and restarted with their
// data, to test what a replicated store does during a leader election.
package natstest

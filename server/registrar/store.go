package registrar

import (
	"context"
	"errors"
	"sync"
	"time"
)

// Store holds the bindings of every AOR: one record per AOR, replaced whole
// by compare-and-swap, so that concurrent REGISTERs — on one hub or on
// several hubs sharing the store — never lose one another's change and the
// bound on bindings per AOR holds across them.
type Store interface {
	// Load returns aor's bindings (expired ones included: the registrar
	// prunes them) and the record's revision, 0 when there is none.
	Load(ctx context.Context, aor string) ([]Binding, uint64, error)
	// Save replaces aor's bindings if its record is still at rev, and
	// returns ErrConflict otherwise. keep is how long the record must live
	// unless saved again (the last binding's expiry plus grace): a store
	// shared by hubs drops it then, so the bindings of a hub that died go
	// with their expiry. An empty list removes the record. Save may keep
	// bindings: the caller does not change it afterwards.
	Save(ctx context.Context, aor string, bindings []Binding, rev uint64, keep time.Duration) error
}

// ErrConflict is Store.Save's answer when the record changed since Load.
var ErrConflict = errors.New("registrar: bindings changed meanwhile")

// Memory is the Store of a hub on its own: bindings belong to its live
// sockets, so they are neither persisted nor shared.
type Memory struct {
	mu   sync.Mutex
	rev  uint64
	recs map[string]memRecord
}

type memRecord struct {
	rev      uint64
	bindings []Binding
}

// NewMemory returns an empty in-memory Store.
func NewMemory() *Memory { return &Memory{recs: make(map[string]memRecord)} }

// Load implements Store.
func (m *Memory) Load(_ context.Context, aor string) ([]Binding, uint64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	rec := m.recs[aor]
	return append([]Binding(nil), rec.bindings...), rec.rev, nil
}

// Save implements Store. Records do not expire by themselves here: the
// registrar prunes expired bindings and removes a closed socket's.
func (m *Memory) Save(_ context.Context, aor string, bindings []Binding, rev uint64, _ time.Duration) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.recs[aor].rev != rev {
		return ErrConflict
	}
	if len(bindings) == 0 {
		delete(m.recs, aor)
		return nil
	}
	m.rev++
	m.recs[aor] = memRecord{rev: m.rev, bindings: bindings}
	return nil
}

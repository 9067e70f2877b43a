package sqlitestore

import (
	"context"
	"fmt"
	"time"

	"github.com/presencehub/presencehub/compositor/store"
)

// WALFrames checkpoints the WAL and returns how many frames (pages) the
// store has written to it since Open: pages per commit for benchmarks.
func WALFrames(s *Store) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	err := s.cp.fullLocked(context.Background())
	return s.cp.frames, err
}

// HubPub is hubPub for the external benchmarks.
var HubPub = hubPub

// hubPub is a dialog publication as the hub stores it at peak: a
// dialog-info document of one early dialog (~430 bytes) and the
// compositor's tombstone bookkeeping (~45 bytes): a row of ~600 bytes.
func hubPub(i int) store.Publication {
	now := time.Now()
	id := fmt.Sprintf("%032x", i)
	res := fmt.Sprintf("sip:bench-%d@bench.test", i)
	body := fmt.Sprintf(`<?xml version="1.0" encoding="UTF-8"?>
<dialog-info xmlns="urn:ietf:params:xml:ns:dialog-info" version="0" state="full" entity="%[1]s">
<dialog id="bench-%[2]d" call-id="bench-%[2]d" direction="recipient"><state>early</state><local><identity>%[1]s</identity><target uri="%[1]s;ts=3415067458;seq=16"/></local></dialog>
</dialog-info>
`, res, i)
	return store.Publication{ID: id, Resource: res, Event: "dialog", ETag: fmt.Sprintf("%026d", i),
		Expires: now.Add(time.Hour), Created: now, Updated: now, ContentType: "application/dialog-info+xml",
		Body: []byte(body), Publisher: "bench-p1", Meta: []byte(fmt.Sprintf(`{"s":{"bench-%d":1796293601406}}`, i))}
}

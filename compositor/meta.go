package compositor

import (
	"encoding/json"

	"time"
)

// meta is the compositor's bookkeeping stored inside a dialog publication
// (store.Publication.Meta), so per-dialog ordering survives a restart and
// can travel to other nodes (docs/architecture.md, "Store").
type meta struct {
	// Tombs: dialog id -> until (unix ms): dialogs of this resource known
	// terminated when this publication was written.
	Tombs map[string]int64 `json:"t,omitempty"`
	// Ignored: non-terminal dialogs of this body that arrived after their
	// termination (RFC 4235 reordering); never shown.
	Ignored []string `json:"i,omitempty"`
}

func decodeMeta(b []byte) meta {
	var m meta
	if len(b) > 0 {
		_ = json.Unmarshal(b, &m) // unreadable bookkeeping only loses ordering hints
	}
	return m
}

func (m meta) encode() []byte {
	if len(m.Tombs) == 0 && len(m.Ignored) == 0 {
		return nil
	}
	b, _ := json.Marshal(m)
	return b
}

func (m meta) ignored(id string) bool {
	for _, x := range m.Ignored {
		if x == id {
			return true
		}
	}
	return false
}

// pruneTombs drops the tombstones that have run out (in place).
func pruneTombs(m map[string]int64, now time.Time) map[string]int64 {
	ms := now.UnixMilli()
	for id, until := range m {
		if until <= ms {
			delete(m, id)
		}
	}
	return m
}

// mergeTombs adds src's tombstones still live at now into dst.
func mergeTombs(dst map[string]int64, src map[string]int64, now time.Time) map[string]int64 {
	ms := now.UnixMilli()
	for id, until := range src {
		if until <= ms {
			continue
		}
		if dst == nil {
			dst = make(map[string]int64, len(src))
		}
		if until > dst[id] {
			dst[id] = until
		}
	}
	return dst
}

package compositor

import "encoding/json"

// meta is the compositor's bookkeeping stored inside a dialog publication
// (store.Publication.Meta), so per-dialog ordering survives a restart and
// can travel to other nodes (docs/architecture.md, "Store"); tombstone.go
// owns what it means.
type meta struct {
	// Tombs: dialog id -> until (unix ms): dialogs of this resource known
	// terminated when this publication was written.
	Tombs tombs `json:"t,omitempty"`
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

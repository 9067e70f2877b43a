package compositor

import (
	"encoding/json"
	"slices"
	"strconv"
	"unicode/utf8"
)

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
	// Since: dialog id -> when it entered its state in this body (unix
	// ms); since.go owns what it means.
	Since map[string]int64 `json:"s,omitempty"`
}

func decodeMeta(b []byte) meta {
	var m meta
	if m, ok := decodeSince(b); ok {
		return m
	}
	if len(b) > 0 {
		_ = json.Unmarshal(b, &m) // unreadable bookkeeping only loses ordering hints
	}
	return m
}

func (m meta) encode() []byte {
	if len(m.Tombs) == 0 && len(m.Ignored) == 0 && len(m.Since) == 0 {
		return nil
	}
	if len(m.Tombs) == 0 && len(m.Ignored) == 0 {
		if b, ok := m.encodeSince(); ok {
			return b // the usual dialog publication, on the PUBLISH path
		}
	}
	b, _ := json.Marshal(m)
	return b
}

// encodeSince writes {"s":{...}} as json.Marshal would (keys sorted) for
// ids that need no escaping, without its reflection; ok false otherwise.
func (m meta) encodeSince() (b []byte, ok bool) {
	b = make([]byte, 0, 8+len(m.Since)*32)
	b = append(b, `{"s":{`...)
	add := func(id string, ms int64) bool {
		for i := 0; i < len(id); i++ {
			if c := id[i]; c < 0x20 || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' || c >= utf8.RuneSelf {
				return false
			}
		}
		if b[len(b)-1] != '{' {
			b = append(b, ',')
		}
		b = append(b, '"')
		b = append(b, id...)
		b = append(b, `":`...)
		b = strconv.AppendInt(b, ms, 10)
		return true
	}
	if len(m.Since) == 1 {
		for id, ms := range m.Since {
			if !add(id, ms) {
				return nil, false
			}
		}
	} else {
		ids := make([]string, 0, len(m.Since))
		for id := range m.Since {
			ids = append(ids, id)
		}
		slices.Sort(ids)
		for _, id := range ids {
			if !add(id, m.Since[id]) {
				return nil, false
			}
		}
	}
	return append(b, "}}"...), true
}

// decodeSince reads what encodeSince writes, without reflection; ok false
// for anything else.
func decodeSince(b []byte) (m meta, ok bool) {
	const pre = `{"s":{`
	if len(b) < len(pre)+2 || string(b[:len(pre)]) != pre || string(b[len(b)-2:]) != "}}" {
		return m, false
	}
	b = b[len(pre) : len(b)-2]
	m.Since = make(map[string]int64, 1)
	for len(b) > 0 {
		if b[0] != '"' {
			return meta{}, false
		}
		end := 1
		for end < len(b) && b[end] != '"' {
			if b[end] == '\\' {
				return meta{}, false
			}
			end++
		}
		if end+1 >= len(b) || b[end+1] != ':' {
			return meta{}, false
		}
		id := string(b[1:end])
		b = b[end+2:]
		n := 0
		for n < len(b) && b[n] != ',' {
			n++
		}
		ms, err := strconv.ParseInt(string(b[:n]), 10, 64)
		if err != nil {
			return meta{}, false
		}
		m.Since[id] = ms
		if n < len(b) {
			n++ // the comma
			if n == len(b) {
				return meta{}, false
			}
		}
		b = b[n:]
	}
	return m, true
}

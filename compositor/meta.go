package compositor

import (
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// meta is the compositor's bookkeeping stored inside a dialog publication
// (store.Publication.Meta), so per-dialog ordering survives a restart and
// can travel to other nodes (docs/architecture.md, "Store"); tombstone.go
// owns what it means.
//
// It is JSON, as encoding/json writes the struct (object keys sorted);
// encode and decodeMeta read and write that form themselves for the usual
// ids (no escaping needed) and leave anything else to encoding/json, so
// the bytes are the same either way.
type meta struct {
	// Tombs: dialog id -> until (unix ms): dialogs of this resource known
	// terminated when this publication was written.
	Tombs tombs `json:"t,omitempty"`
	// Ignored: non-terminal dialogs of this body that arrived after their
	// termination (RFC 4235 reordering); never shown.
	Ignored []string `json:"i,omitempty"`
	// Since: when each dialog entered its state in this body (unix ms);
	// since.go owns what it means.
	Since stamps `json:"s,omitempty"`
}

// stamps maps a dialog id to an instant (unix ms): a slice sorted by id,
// one allocation however many dialogs, written as a JSON object.
type stamps []stamp

type stamp struct {
	id string
	ms int64
}

func compareStamp(a stamp, id string) int { return strings.Compare(a.id, id) }

// get returns id's instant.
func (s stamps) get(id string) (int64, bool) {
	if len(s) == 1 { // the usual publication: one dialog
		return s[0].ms, s[0].id == id
	}
	if i, ok := slices.BinarySearchFunc(s, id, compareStamp); ok {
		return s[i].ms, true
	}
	return 0, false
}

// sort puts s in id order and reports whether the ids are distinct.
func (s stamps) sort() bool {
	if len(s) < 2 {
		return true
	}
	slices.SortFunc(s, func(a, b stamp) int { return strings.Compare(a.id, b.id) })
	for i := 1; i < len(s); i++ {
		if s[i].id == s[i-1].id {
			return false
		}
	}
	return true
}

// MarshalJSON writes s as the object {"id":ms,...}, keys sorted as
// encoding/json sorts a map's.
func (s stamps) MarshalJSON() ([]byte, error) {
	b := []byte{'{'}
	for i, st := range s {
		if i > 0 {
			b = append(b, ',')
		}
		k, err := json.Marshal(st.id)
		if err != nil {
			return nil, err
		}
		b = append(b, k...)
		b = append(b, ':')
		b = strconv.AppendInt(b, st.ms, 10)
	}
	return append(b, '}'), nil
}

// UnmarshalJSON reads what MarshalJSON writes.
func (s *stamps) UnmarshalJSON(b []byte) error {
	var m map[string]int64
	if err := json.Unmarshal(b, &m); err != nil {
		return err
	}
	out := make(stamps, 0, len(m))
	for id, ms := range m {
		out = append(out, stamp{id, ms})
	}
	out.sort()
	if len(out) == 0 {
		out = nil
	}
	*s = out
	return nil
}

func decodeMeta(b []byte) meta {
	if len(b) == 0 {
		return meta{}
	}
	if m, ok := decodeFast(b); ok {
		return m
	}
	var m meta
	_ = json.Unmarshal(b, &m) // unreadable bookkeeping only loses ordering hints
	return m
}

func (m meta) encode() []byte {
	if len(m.Tombs) == 0 && len(m.Ignored) == 0 && len(m.Since) == 0 {
		return nil
	}
	if b, ok := m.encodeFast(); ok {
		return b // the usual dialog publication, on the PUBLISH path
	}
	b, _ := json.Marshal(m)
	return b
}

// plain reports whether encoding/json writes id as it is between quotes.
func plain(id string) bool {
	for i := 0; i < len(id); i++ {
		if c := id[i]; c < 0x20 || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' || c >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// encodeFast writes m as json.Marshal would when every id is plain,
// without its reflection; ok false otherwise.
func (m meta) encodeFast() (b []byte, ok bool) {
	n := 2
	for id := range m.Tombs {
		n += len(id) + 20
	}
	for _, id := range m.Ignored {
		n += len(id) + 3
	}
	for _, st := range m.Since {
		n += len(st.id) + 20
	}
	b = make([]byte, 0, n+16)
	b = append(b, '{')
	key := func(id string, ms int64) bool {
		if !plain(id) {
			return false
		}
		if c := b[len(b)-1]; c != '{' {
			b = append(b, ',')
		}
		b = append(b, '"')
		b = append(b, id...)
		b = append(b, `":`...)
		b = strconv.AppendInt(b, ms, 10)
		return true
	}
	if len(m.Tombs) > 0 {
		b = append(b, `"t":{`...)
		if len(m.Tombs) == 1 {
			for id, until := range m.Tombs {
				if !key(id, until) {
					return nil, false
				}
			}
		} else {
			ids := make([]string, 0, len(m.Tombs))
			for id := range m.Tombs {
				ids = append(ids, id)
			}
			slices.Sort(ids)
			for _, id := range ids {
				if !key(id, m.Tombs[id]) {
					return nil, false
				}
			}
		}
		b = append(b, '}')
	}
	if len(m.Ignored) > 0 {
		if len(b) > 1 {
			b = append(b, ',')
		}
		b = append(b, `"i":[`...)
		for i, id := range m.Ignored {
			if !plain(id) {
				return nil, false
			}
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, '"')
			b = append(b, id...)
			b = append(b, '"')
		}
		b = append(b, ']')
	}
	if len(m.Since) > 0 {
		if len(b) > 1 {
			b = append(b, ',')
		}
		b = append(b, `"s":{`...)
		for _, st := range m.Since {
			if !key(st.id, st.ms) {
				return nil, false
			}
		}
		b = append(b, '}')
	}
	return append(b, '}'), true
}

// decodeFast reads what encodeFast writes, without reflection; ok false
// for anything else (encoding/json reads it then).
func decodeFast(b []byte) (m meta, ok bool) {
	r := metaReader{b: b}
	if !r.byte('{') {
		return meta{}, false
	}
	for !r.byte('}') {
		if len(r.b) != len(b)-1 && !r.byte(',') {
			return meta{}, false
		}
		name, ok := r.str()
		if !ok || !r.byte(':') {
			return meta{}, false
		}
		switch name {
		case "t":
			if m.Tombs != nil {
				return meta{}, false
			}
			m.Tombs = tombs{}
			if !r.object(func(id string, ms int64) { m.Tombs[id] = ms }) {
				return meta{}, false
			}
		case "i":
			if m.Ignored != nil || !r.byte('[') {
				return meta{}, false
			}
			m.Ignored = []string{}
			for !r.byte(']') {
				if len(m.Ignored) > 0 && !r.byte(',') {
					return meta{}, false
				}
				id, ok := r.str()
				if !ok {
					return meta{}, false
				}
				m.Ignored = append(m.Ignored, id)
			}
		case "s":
			if m.Since != nil {
				return meta{}, false
			}
			m.Since = make(stamps, 0, 1)
			if !r.object(func(id string, ms int64) { m.Since = append(m.Since, stamp{id, ms}) }) || !m.Since.sort() {
				return meta{}, false
			}
		default:
			return meta{}, false
		}
	}
	if len(r.b) != 0 {
		return meta{}, false
	}
	return m.emptyAsNil(), true
}

// emptyAsNil is m with its empty collections nil, as encoding/json leaves
// absent ones.
func (m meta) emptyAsNil() meta {
	if len(m.Tombs) == 0 {
		m.Tombs = nil
	}
	if len(m.Ignored) == 0 {
		m.Ignored = nil
	}
	if len(m.Since) == 0 {
		m.Since = nil
	}
	return m
}

// metaReader reads the JSON subset encodeFast writes.
type metaReader struct{ b []byte }

func (r *metaReader) byte(c byte) bool {
	if len(r.b) > 0 && r.b[0] == c {
		r.b = r.b[1:]
		return true
	}
	return false
}

// str reads a string without escapes.
func (r *metaReader) str() (string, bool) {
	if !r.byte('"') {
		return "", false
	}
	for i, c := range r.b {
		switch {
		case c == '"':
			s := string(r.b[:i])
			r.b = r.b[i+1:]
			return s, true
		case c == '\\' || c < 0x20 || c >= utf8.RuneSelf:
			return "", false
		}
	}
	return "", false
}

// int reads a decimal integer of at most 18 digits (unix ms have 13).
func (r *metaReader) int() (int64, bool) {
	neg := r.byte('-')
	var v int64
	n := 0
	for n < len(r.b) && r.b[n] >= '0' && r.b[n] <= '9' {
		v = v*10 + int64(r.b[n]-'0')
		n++
	}
	if n == 0 || n > 18 || n > 1 && r.b[0] == '0' {
		return 0, false
	}
	r.b = r.b[n:]
	if neg {
		v = -v
	}
	return v, true
}

// object reads {"id":ms,...}, calling add for each member.
func (r *metaReader) object(add func(id string, ms int64)) bool {
	if !r.byte('{') {
		return false
	}
	for first := true; !r.byte('}'); first = false {
		if !first && !r.byte(',') {
			return false
		}
		id, ok := r.str()
		if !ok || !r.byte(':') {
			return false
		}
		ms, ok := r.int()
		if !ok {
			return false
		}
		add(id, ms)
	}
	return true
}

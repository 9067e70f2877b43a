package compositor

import (
	"slices"
	"strings"
	"time"

	"github.com/presencehub/presencehub/compositor/dialoginfo"
)

// When each dialog entered its state (the hub's <since> stamp, rendered by
// dialoginfo in the hub's namespace). This file is the one home of the rule:
//
//   - A dialog publication carries, per dialog of its body, the instant the
//     dialog entered the state the body gives it (meta.Since, unix ms), so
//     the stamp survives a restart and reaches other nodes through the
//     store, as tombstones do.
//   - A new dialog, or one whose state changed, is stamped now. A dialog
//     whose state did not change keeps its stamp: from the publication's
//     previous version, else from the composed view (another device or a
//     new publication repeating the state). A refresh keeps them all.
//   - The composed view shows the winning publication's stamp; publishers
//     cannot set it (dialoginfo.Parse never reads the hub's namespace).

// sinceMeta returns the stamps of body's dialogs (nil body: a refresh keeps
// old's). view is the resource's composed dialogs before this PUBLISH.
func sinceMeta(old *entry, body *parsed, view []dialoginfo.Dialog, now time.Time) stamps {
	if body == nil || body.dialogs == nil {
		if old != nil {
			return old.meta.Since
		}
		return nil
	}
	var out stamps
	for _, d := range body.dialogs.Dialogs {
		if d.Terminated() {
			continue
		}
		at := now.UnixMilli()
		if ms, ok := prevSince(old, d); ok {
			at = ms
		} else if ms, ok := viewSince(view, d); ok {
			at = ms
		}
		if out == nil {
			out = make(stamps, 0, len(body.dialogs.Dialogs))
		}
		out = append(out, stamp{d.ID, at})
	}
	out.sort() // the body's ids are distinct (dialoginfo.Parse)
	return out
}

// prevSince is d's stamp in the publication's previous version when d was
// already in the same state there.
func prevSince(old *entry, d dialoginfo.Dialog) (int64, bool) {
	if old == nil {
		return 0, false
	}
	ms, ok := old.meta.Since.get(d.ID)
	if !ok {
		return 0, false
	}
	for _, o := range dialogsOf(old) {
		if o.ID == d.ID {
			return ms, o.State == d.State
		}
	}
	return 0, false
}

// viewSince is d's stamp in the composed view (sorted by id) when the view
// shows d in the same state.
func viewSince(view []dialoginfo.Dialog, d dialoginfo.Dialog) (int64, bool) {
	i, ok := slices.BinarySearchFunc(view, d.ID, func(v dialoginfo.Dialog, id string) int { return strings.Compare(v.ID, id) })
	if !ok {
		return 0, false
	}
	v := &view[i]
	return v.Since.UnixMilli(), v.State == d.State && !v.Since.IsZero()
}

// stamped returns d with the stamp its publication e gave it.
func stamped(d dialoginfo.Dialog, e *entry) dialoginfo.Dialog {
	if ms, ok := e.meta.Since.get(d.ID); ok {
		d.Since = time.UnixMilli(ms).UTC()
	}
	return d
}

package notifier

import "github.com/presencehub/presencehub/server/flow"

// round is the flows Run has queued NOTIFYs on without waking their
// writers (flow.RequestHeld) while it fans out one round of changes. At the
// end of the round release wakes each once, so a socket that got several
// NOTIFYs in the round writes them with one write(2) instead of the writer
// taking the first alone. Only Run's goroutine uses it, and it never waits
// with flows held.
type round struct {
	flows []*flow.Flow
	seen  map[*flow.Flow]struct{}
	held  int // NOTIFYs held since the last release
}

// full reports whether the round holds enough NOTIFYs to be released
// before its next change: a socket's held queue stays far below the write
// queue's bound (wsproto.Options.WriteQueue), and the first NOTIFY of a
// burst does not wait for the whole burst to be rendered.
func (r *round) full() bool { return r.held >= maxRoundNotifies }

func (r *round) hold(fl *flow.Flow) {
	r.held++
	if r.seen == nil {
		r.seen = make(map[*flow.Flow]struct{})
	}
	if _, ok := r.seen[fl]; ok {
		return
	}
	r.seen[fl] = struct{}{}
	r.flows = append(r.flows, fl)
}

// release wakes the writer of every flow held (a closed one drops what
// waits) and forgets them.
func (r *round) release() {
	r.held = 0
	for _, fl := range r.flows {
		fl.Kick()
	}
	if len(r.flows) > maxKeptRound {
		// A burst is over: do not keep its memory.
		r.flows, r.seen = nil, nil
		return
	}
	clear(r.flows)
	r.flows = r.flows[:0]
	clear(r.seen)
}

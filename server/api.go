package server

import (
	"encoding/json"
	"errors"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/presencehub/presencehub/compositor"
	"github.com/presencehub/presencehub/compositor/dialoginfo"
	"github.com/presencehub/presencehub/compositor/pidf"
	"github.com/presencehub/presencehub/internal/siprule"
	"github.com/presencehub/presencehub/server/notifier"
	"github.com/presencehub/presencehub/server/registrar"
)

// apiHandler is the admin JSON API; every call needs a token with "admin": true.
//
//	GET    /api/resources[?after=aor]               resources with live publications and their composed state (paged by the store's index)
//	GET    /api/resources/{aor}                     composed views and publications of one resource
//	DELETE /api/resources/{aor}/publications/{etag} remove a publication (watchers are notified)
//	GET    /api/subscriptions[?watcher=sub]         subscriptions (paged)
//	DELETE /api/subscriptions/{id}                  end a subscription (final NOTIFY, reason deactivated)
//	GET    /api/registrations[?aor=sip:..|?user=..] registrar bindings (paged)
//	GET, PUT, DELETE /api/lists[/{name}]            stored resource lists (lists.go)
//
// Paged lists take ?offset= and ?limit= (default 100, at most 1000) and answer
// {"items": [...], "total": N, "next": offset-or-null}. Errors, including
// unknown paths and methods, are {"error": "..."} with a matching HTTP status.
func (s *Server) apiHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/resources", func(w http.ResponseWriter, r *http.Request) {
		offset, limit, ok := pageParams(w, r)
		if !ok {
			return
		}
		// One page of the store's resource index (O(page)), not a listing
		// of every resource.
		after := r.URL.Query().Get("after")
		list, total, err := s.comp.ResourcePage(r.Context(), after, offset, limit)
		if err != nil {
			apiError(w, http.StatusServiceUnavailable, err.Error())
			return
		}
		type item struct {
			Resource string            `json:"resource"`
			State    map[string]string `json:"state"` // event → summary (dialog: idle/trying/proceeding/early/confirmed; presence: open/closed)
		}
		items := make([]item, 0, len(list))
		for _, aor := range list {
			it := item{Resource: aor, State: map[string]string{}}
			for _, ev := range s.comp.Events() {
				it.State[ev] = summary(s.comp.View(aor, ev))
			}
			items = append(items, it)
		}
		var next *int
		var nextAfter *string
		if len(list) == limit {
			if after == "" && offset+limit < total {
				n := offset + limit
				next = &n
			}
			last := list[len(list)-1]
			nextAfter = &last
		}
		writeJSON(w, http.StatusOK, map[string]any{"items": items, "total": total, "next": next, "next_after": nextAfter})
	})
	mux.HandleFunc("GET /api/resources/{aor}", func(w http.ResponseWriter, r *http.Request) {
		aor := r.PathValue("aor")
		if !strings.HasPrefix(aor, "sip:") || !strings.Contains(aor, "@") {
			apiError(w, http.StatusBadRequest, "resource must be an AOR like sip:1001@"+s.cfg.Domain)
			return
		}
		pubs, err := s.comp.List(r.Context(), aor)
		if err != nil {
			apiError(w, http.StatusServiceUnavailable, err.Error())
			return
		}
		views := map[string]apiView{}
		for _, ev := range s.comp.Events() {
			views[ev] = newAPIView(s.comp.View(aor, ev), s.comp.ContentType(ev))
		}
		out := make([]apiPublication, 0, len(pubs))
		for _, p := range pubs {
			out = append(out, newAPIPublication(p))
		}
		writeJSON(w, http.StatusOK, map[string]any{"resource": aor, "views": views, "publications": out})
	})
	mux.HandleFunc("DELETE /api/resources/{aor}/publications/{etag}", func(w http.ResponseWriter, r *http.Request) {
		err := s.comp.Remove(r.Context(), r.PathValue("aor"), r.PathValue("etag"))
		switch {
		case errors.Is(err, compositor.ErrNotFound):
			apiError(w, http.StatusNotFound, "no such publication")
		case err != nil:
			apiError(w, http.StatusServiceUnavailable, err.Error())
		default:
			w.WriteHeader(http.StatusNoContent)
		}
	})
	mux.HandleFunc("GET /api/subscriptions", func(w http.ResponseWriter, r *http.Request) {
		list := s.notifier.List(r.URL.Query().Get("watcher"))
		sort.Slice(list, func(i, j int) bool { return list[i].ID < list[j].ID })
		page(w, r, list, func(i notifier.Info) notifier.Info { return i })
	})
	mux.HandleFunc("DELETE /api/subscriptions/{id}", func(w http.ResponseWriter, r *http.Request) {
		if !s.notifier.End(r.PathValue("id"), notifier.ReasonDeactivated) {
			apiError(w, http.StatusNotFound, "no such subscription")
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("GET /api/registrations", func(w http.ResponseWriter, r *http.Request) {
		type binding struct {
			AOR     string    `json:"aor"`
			Contact string    `json:"contact"`
			Expires time.Time `json:"expires"`
		}
		aor := r.URL.Query().Get("aor")
		if user := r.URL.Query().Get("user"); user != "" && aor == "" {
			aor = siprule.AOR(user, s.cfg.Domain)
		}
		page(w, r, s.registrar.Bindings(aor), func(b registrar.Binding) binding {
			return binding{b.AOR, b.Contact.Value(), b.Expires.UTC().Truncate(time.Second)}
		})
	})
	s.listAPI(mux) // lists.go
	mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		apiError(w, http.StatusNotFound, "no such endpoint")
	})
	return s.requireAdmin(jsonMethodErrors(mux))
}

// jsonMethodErrors answers a known path with a method it does not serve with
// a JSON 405 (the mux's own answer is plain text).
func jsonMethodErrors(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, pattern := mux.Handler(r); pattern == "/api/" {
			for _, m := range []string{http.MethodGet, http.MethodPut, http.MethodDelete} {
				if m == r.Method {
					continue
				}
				probe := r.Clone(r.Context())
				probe.Method = m
				if _, p := mux.Handler(probe); p != "/api/" {
					w.Header().Set("Allow", m)
					apiError(w, http.StatusMethodNotAllowed, "method "+r.Method+" not allowed here")
					return
				}
			}
		}
		mux.ServeHTTP(w, r)
	})
}

func (s *Server) requireAdmin(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok := bearer(r.Header.Get("Authorization"))
		if tok == "" {
			w.Header().Set("WWW-Authenticate", `Bearer realm="presencehub"`)
			apiError(w, http.StatusUnauthorized, "bearer token required")
			return
		}
		id, err := s.cfg.Verifier.Verify(tok)
		if err != nil {
			s.metrics.authFailure(err)
			w.Header().Set("WWW-Authenticate", `Bearer realm="presencehub", error="invalid_token"`)
			apiError(w, http.StatusUnauthorized, "invalid token")
			return
		}
		if !id.Admin {
			apiError(w, http.StatusForbidden, "admin claim required")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// apiView is the composed state of one (resource, event).
type apiView struct {
	Rev         uint64      `json:"rev"`               // store revision that produced it (0: nothing ever published)
	Summary     string      `json:"summary"`           // dialog: idle/trying/proceeding/early/confirmed; presence: open/closed
	ContentType string      `json:"content_type"`      // of body
	Body        string      `json:"body"`              // the document a new watcher gets (dialog-info version 0)
	Dialogs     []apiDialog `json:"dialogs,omitempty"` // dialog: the live dialogs
}

type apiDialog struct {
	ID             string `json:"id"`
	CallID         string `json:"call_id,omitempty"`
	LocalTag       string `json:"local_tag,omitempty"`
	RemoteTag      string `json:"remote_tag,omitempty"`
	Direction      string `json:"direction,omitempty"`
	State          string `json:"state"`
	LocalIdentity  string `json:"local_identity,omitempty"`
	LocalDisplay   string `json:"local_display,omitempty"`
	RemoteIdentity string `json:"remote_identity,omitempty"`
	RemoteDisplay  string `json:"remote_display,omitempty"`
}

func newAPIView(v compositor.View, contentType string) apiView {
	out := apiView{Rev: v.Rev, Summary: summary(v), ContentType: contentType, Body: string(v.AppendXML(nil))}
	for _, d := range v.Dialogs {
		out.Dialogs = append(out.Dialogs, apiDialog{d.ID, d.CallID, d.LocalTag, d.RemoteTag, d.Direction, d.State,
			d.LocalIdentity, d.LocalDisplay, d.RemoteIdentity, d.RemoteDisplay})
	}
	return out
}

// summary is the one-word state of a view: the busiest live dialog, or
// whether any presence tuple is open.
func summary(v compositor.View) string {
	switch v.Event {
	case compositor.EventDialog:
		rank := map[string]int{dialoginfo.Trying: 1, dialoginfo.Proceeding: 2, dialoginfo.Early: 3, dialoginfo.Confirmed: 4}
		best := "idle"
		for _, d := range v.Dialogs {
			if rank[d.State] > rank[best] {
				best = d.State
			}
		}
		return best
	case compositor.EventMessageSummary:
		if v.Summary != nil && v.Summary.Waiting {
			return "waiting"
		}
		return "none"
	case compositor.EventPresence:
		if v.Presence != nil {
			for _, t := range v.Presence.Tuples {
				if t.Basic == pidf.Open {
					return pidf.Open
				}
			}
		}
		return pidf.Closed
	}
	return ""
}

// apiPublication is one publication as the admin API shows it.
type apiPublication struct {
	ID          string    `json:"id"`
	ETag        string    `json:"etag"`
	Event       string    `json:"event"`
	Publisher   string    `json:"publisher"`
	Rev         uint64    `json:"rev"`
	Created     time.Time `json:"created"`
	Updated     time.Time `json:"updated"`
	Expires     time.Time `json:"expires"`
	ContentType string    `json:"content_type"`
	Body        string    `json:"body"`
}

func newAPIPublication(p compositor.Publication) apiPublication {
	return apiPublication{p.ID, p.ETag, p.Event, p.Publisher, p.Rev, p.Created.UTC(), p.Updated.UTC(), p.Expires.UTC(),
		p.ContentType, string(p.Body)}
}

// page writes one page of items, each turned into its JSON form by conv
// (only the page's items are converted).
func page[T, J any](w http.ResponseWriter, r *http.Request, items []T, conv func(T) J) {
	offset, limit, ok := pageParams(w, r)
	if !ok {
		return
	}
	offset = min(offset, len(items))
	end := min(offset+limit, len(items))
	var next *int
	if end < len(items) {
		next = &end
	}
	out := make([]J, 0, end-offset)
	for _, it := range items[offset:end] {
		out = append(out, conv(it))
	}
	writeJSON(w, http.StatusOK, map[string]any{"items": out, "total": len(items), "next": next})
}

// pageParams reads ?offset= (default 0) and ?limit= (1–1000, default 100);
// on a bad value it answers 400 and reports false.
func pageParams(w http.ResponseWriter, r *http.Request) (offset, limit int, ok bool) {
	q := r.URL.Query()
	offset, limit = 0, 100
	for _, p := range []struct {
		name string
		dst  *int
		max  int
	}{{"offset", &offset, -1}, {"limit", &limit, 1000}} {
		v := q.Get(p.name)
		if v == "" {
			continue
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || p.max > 0 && (n == 0 || n > p.max) {
			msg := p.name + " must be a non-negative integer"
			if p.max > 0 {
				msg = p.name + " must be between 1 and " + strconv.Itoa(p.max)
			}
			apiError(w, http.StatusBadRequest, msg)
			return 0, 0, false
		}
		*p.dst = n
	}
	return offset, limit, true
}

func apiError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, map[string]string{"error": msg})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

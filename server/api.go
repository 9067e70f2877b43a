package server

import (
	"encoding/json"
	"errors"
	"net/http"
	"sort"
	"strconv"

	"github.com/presencehub/presencehub/compositor"
	"github.com/presencehub/presencehub/server/notifier"
)

// apiHandler is the admin JSON API; every call needs a token with "admin": true.
//
//	GET    /api/resources                         resources with live publications (paged)
//	GET    /api/resources/{aor}                   composed views and publications of one resource
//	DELETE /api/resources/{aor}/publications/{etag} remove a publication
//	GET    /api/subscriptions[?watcher=sub]       subscriptions (paged)
//	DELETE /api/subscriptions/{id}                end a subscription (reason deactivated)
//	GET    /api/registrations[?aor=sip:..]        registrar bindings (paged)
//
// Paged lists take ?offset= and ?limit= (default 100, at most 1000) and answer
// {"items": [...], "total": N, "next": offset-or-null}. Errors are
// {"error": "..."} with a matching HTTP status.
func (s *Server) apiHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/resources", func(w http.ResponseWriter, r *http.Request) {
		list, err := s.comp.Resources(r.Context())
		if err != nil {
			apiError(w, http.StatusServiceUnavailable, err.Error())
			return
		}
		sort.Strings(list)
		page(w, r, list)
	})
	mux.HandleFunc("GET /api/resources/{aor}", func(w http.ResponseWriter, r *http.Request) {
		aor := r.PathValue("aor")
		pubs, err := s.comp.List(r.Context(), aor)
		if err != nil {
			apiError(w, http.StatusServiceUnavailable, err.Error())
			return
		}
		views := map[string]compositor.View{}
		for _, ev := range s.comp.Events() {
			views[ev] = s.comp.View(aor, ev)
		}
		writeJSON(w, http.StatusOK, map[string]any{"resource": aor, "views": views, "publications": pubs})
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
		page(w, r, list)
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
			AOR     string `json:"aor"`
			Contact string `json:"contact"`
			Expires string `json:"expires"`
		}
		var out []binding
		for _, b := range s.registrar.Bindings(r.URL.Query().Get("aor")) {
			out = append(out, binding{b.AOR, b.Contact.Value(), b.Expires.UTC().Format("2006-01-02T15:04:05Z")})
		}
		page(w, r, out)
	})
	return s.requireAdmin(mux)
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

func page[T any](w http.ResponseWriter, r *http.Request, items []T) {
	offset, _ := strconv.Atoi(r.URL.Query().Get("offset"))
	limit, _ := strconv.Atoi(r.URL.Query().Get("limit"))
	if limit <= 0 || limit > 1000 {
		limit = 100
	}
	if offset < 0 || offset > len(items) {
		offset = len(items)
	}
	end := min(offset+limit, len(items))
	var next *int
	if end < len(items) {
		next = &end
	}
	out := items[offset:end]
	if out == nil {
		out = []T{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"items": out, "total": len(items), "next": next})
}

func apiError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, map[string]string{"error": msg})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

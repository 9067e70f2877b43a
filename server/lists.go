package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/presencehub/presencehub/compositor/store"
	"github.com/presencehub/presencehub/server/notifier"
)

// Stored resource lists (RFC 4662): kept in the store when it implements
// store.Lists, served by the notifier at sip:<name>@<domain>.
//
//	GET    /api/lists         every list (paged)
//	GET    /api/lists/{name}  one list
//	PUT    /api/lists/{name}  create or replace: {"event": "dialog", "members": ["1001"], "names": {"1001": "Reception"}}
//	DELETE /api/lists/{name}  remove (its subscriptions end with reason noresource)

// apiList is a list as the admin API shows it.
type apiList struct {
	Name    string            `json:"name"`
	URI     string            `json:"uri"`
	Event   string            `json:"event"`
	Members []string          `json:"members"`
	Names   map[string]string `json:"names,omitempty"`
	Updated time.Time         `json:"updated"`
}

func (s *Server) newAPIList(l store.ResourceList) apiList {
	if l.Members == nil {
		l.Members = []string{}
	}
	return apiList{Name: l.Name, URI: s.notifier.ListURI(l.Name), Event: l.Event, Members: l.Members, Names: l.Names, Updated: l.Updated.UTC()}
}

func toNotifierList(l store.ResourceList) notifier.List {
	return notifier.List{Name: l.Name, Event: l.Event, Members: l.Members, Names: l.Names}
}

// loadLists hands the stored lists to the notifier (start-up).
func (s *Server) loadLists(ctx context.Context) error {
	ls, ok := s.cfg.Store.(store.Lists)
	if !ok {
		return nil
	}
	all, err := ls.AllLists(ctx)
	if err != nil {
		return fmt.Errorf("load lists: %w", err)
	}
	for _, l := range all {
		s.notifier.SetList(toNotifierList(l))
	}
	return nil
}

func (s *Server) listAPI(mux *http.ServeMux) {
	lists := func(w http.ResponseWriter) (store.Lists, bool) {
		ls, ok := s.cfg.Store.(store.Lists)
		if !ok {
			apiError(w, http.StatusNotImplemented, "this store keeps no lists")
		}
		return ls, ok
	}
	mux.HandleFunc("GET /api/lists", func(w http.ResponseWriter, r *http.Request) {
		ls, ok := lists(w)
		if !ok {
			return
		}
		all, err := ls.AllLists(r.Context())
		if err != nil {
			apiError(w, http.StatusServiceUnavailable, err.Error())
			return
		}
		page(w, r, all, s.newAPIList)
	})
	mux.HandleFunc("GET /api/lists/{name}", func(w http.ResponseWriter, r *http.Request) {
		ls, ok := lists(w)
		if !ok {
			return
		}
		l, err := ls.GetList(r.Context(), r.PathValue("name"))
		switch {
		case errors.Is(err, store.ErrNotFound):
			apiError(w, http.StatusNotFound, "no such list")
		case err != nil:
			apiError(w, http.StatusServiceUnavailable, err.Error())
		default:
			writeJSON(w, http.StatusOK, s.newAPIList(l))
		}
	})
	mux.HandleFunc("PUT /api/lists/{name}", func(w http.ResponseWriter, r *http.Request) {
		ls, ok := lists(w)
		if !ok {
			return
		}
		var in struct {
			Event   string            `json:"event"`
			Members []string          `json:"members"`
			Names   map[string]string `json:"names"`
		}
		dec := json.NewDecoder(io.LimitReader(r.Body, 1<<20))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&in); err != nil {
			apiError(w, http.StatusBadRequest, "body: "+err.Error())
			return
		}
		l := store.ResourceList{Name: r.PathValue("name"), Event: strings.TrimSpace(in.Event), Members: in.Members, Names: in.Names, Updated: time.Now()}
		if err := s.notifier.CheckList(toNotifierList(l)); err != nil {
			apiError(w, http.StatusBadRequest, err.Error())
			return
		}
		_, err := ls.GetList(r.Context(), l.Name)
		created := errors.Is(err, store.ErrNotFound)
		if err := ls.PutList(r.Context(), l); err != nil {
			apiError(w, http.StatusServiceUnavailable, err.Error())
			return
		}
		s.notifier.SetList(toNotifierList(l))
		code := http.StatusOK
		if created {
			code = http.StatusCreated
		}
		writeJSON(w, code, s.newAPIList(l))
	})
	mux.HandleFunc("DELETE /api/lists/{name}", func(w http.ResponseWriter, r *http.Request) {
		ls, ok := lists(w)
		if !ok {
			return
		}
		err := ls.DeleteList(r.Context(), r.PathValue("name"))
		switch {
		case errors.Is(err, store.ErrNotFound):
			apiError(w, http.StatusNotFound, "no such list")
		case err != nil:
			apiError(w, http.StatusServiceUnavailable, err.Error())
		default:
			s.notifier.DeleteList(r.PathValue("name"))
			w.WriteHeader(http.StatusNoContent)
		}
	})
}

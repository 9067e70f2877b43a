package memstore

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/presencehub/presencehub/compositor/store"
)

var _ store.Lists = (*Store)(nil)

func cloneList(l store.ResourceList) store.ResourceList {
	l.Members = slices.Clone(l.Members)
	l.Names = maps.Clone(l.Names)
	return l
}

// PutList implements store.Lists.
func (s *Store) PutList(_ context.Context, l store.ResourceList) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return store.ErrClosed
	}
	if s.lists == nil {
		s.lists = make(map[string]store.ResourceList)
	}
	s.lists[l.Name] = cloneList(l)
	return nil
}

// GetList implements store.Lists.
func (s *Store) GetList(_ context.Context, name string) (store.ResourceList, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	l, ok := s.lists[name]
	if !ok {
		return store.ResourceList{}, fmt.Errorf("list %q: %w", name, store.ErrNotFound)
	}
	return cloneList(l), nil
}

// DeleteList implements store.Lists.
func (s *Store) DeleteList(_ context.Context, name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.lists[name]; !ok {
		return fmt.Errorf("list %q: %w", name, store.ErrNotFound)
	}
	delete(s.lists, name)
	return nil
}

// AllLists implements store.Lists.
func (s *Store) AllLists(context.Context) ([]store.ResourceList, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]store.ResourceList, 0, len(s.lists))
	for _, l := range s.lists {
		out = append(out, cloneList(l))
	}
	slices.SortFunc(out, func(a, b store.ResourceList) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

package store

import (
	"context"
	"time"
)

// ResourceList is a stored resource list (RFC 4662): its subscribers watch
// every member through one subscription to sip:<Name>@<domain>.
type ResourceList struct {
	Name    string            // user part of the list URI
	Event   string            // event package of the list ("dialog", "presence", "message-summary")
	Members []string          // user parts (or AORs) in display order
	Names   map[string]string // member → display name (optional)
	Updated time.Time
}

// Lists is what a store that keeps resource lists offers beyond Store. It
// is optional: a hub on a store without it has no stored lists (the admin
// API answers 501) and still serves request-contained lists (RFC 5367).
type Lists interface {
	// PutList creates or replaces the list l.Name.
	PutList(ctx context.Context, l ResourceList) error
	// GetList returns the list name, or ErrNotFound.
	GetList(ctx context.Context, name string) (ResourceList, error)
	// DeleteList removes the list name, or returns ErrNotFound.
	DeleteList(ctx context.Context, name string) error
	// AllLists returns every list, sorted by name.
	AllLists(ctx context.Context) ([]ResourceList, error)
}

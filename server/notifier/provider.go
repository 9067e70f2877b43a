package notifier

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/presencehub/presencehub/compositor"
)

// SubscriptionInfo is what a provider may look at to decide whether, and how,
// it renders bodies for a subscription.
type SubscriptionInfo struct {
	Resource  string   // watched AOR
	Event     string   // event package
	Accept    []string // media types the subscriber accepts (lower case; empty = none given)
	UserAgent string
	Watcher   string // the subscriber's identity (token sub)
}

// Body is a rendered NOTIFY body. When VersionAt >= 0 the subscription's
// version number (RFC 4235 §4.1) is inserted at that offset of Data; Data
// itself is the same for every subscription and is what deduplication compares.
type Body struct {
	Data      []byte
	VersionAt int
}

// Provider renders NOTIFY bodies of one (event, content type) pair.
type Provider struct {
	Name        string
	Event       string
	ContentType string
	// Handles reports whether the provider serves the subscription; nil
	// means every subscription of the pair.
	Handles func(SubscriptionInfo) bool
	// Variant names the rendering a subscription gets when a provider's
	// output depends on the subscriber (say, a device's dialect); all
	// subscriptions of one variant share one rendering per change. nil: "".
	Variant func(SubscriptionInfo) string
	// Render renders the composed view for a variant.
	Render func(view compositor.View, variant string) (Body, error)
}

// Registry holds the providers. It is safe for concurrent use.
type Registry struct {
	mu        sync.RWMutex
	providers []*Provider
}

// Register adds p. Providers registered later for the same pair are asked
// first, so an integration can specialise a built-in one.
func (r *Registry) Register(p Provider) error {
	if p.Event == "" || p.ContentType == "" || p.Render == nil {
		return errors.New("notifier: provider needs Event, ContentType and Render")
	}
	p.ContentType = strings.ToLower(p.ContentType)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.providers = append([]*Provider{&p}, r.providers...)
	return nil
}

// Events lists the event packages with at least one provider.
func (r *Registry) Events() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	var out []string
	for _, p := range r.providers {
		if !slices.Contains(out, p.Event) {
			out = append(out, p.Event)
		}
	}
	slices.Sort(out)
	return out
}

// errNoEvent and errNotAcceptable map to 489 and 406.
var (
	errNoEvent       = errors.New("no provider for event")
	errNotAcceptable = errors.New("no acceptable content type")
)

// choose picks the provider for a subscription: RFC 6665 §4.2.1.1 (489 for
// an unknown package) and RFC 3261 §21.4.7 (406 when Accept rules out every
// type). Without Accept the subscriber gets the package's default type, which
// is the type of the first-registered (built-in) provider.
func (r *Registry) choose(info SubscriptionInfo) (*Provider, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	accept := info.Accept
	if len(accept) == 0 {
		def := ""
		for _, p := range r.providers {
			if p.Event == info.Event {
				def = p.ContentType // the earliest registered is last
			}
		}
		if def == "" {
			return nil, fmt.Errorf("%w %q", errNoEvent, info.Event)
		}
		accept = []string{def}
	}
	found := false
	for _, p := range r.providers {
		if p.Event != info.Event {
			continue
		}
		found = true
		if accepts(accept, p.ContentType) && (p.Handles == nil || p.Handles(info)) {
			return p, nil
		}
	}
	if !found {
		return nil, fmt.Errorf("%w %q", errNoEvent, info.Event)
	}
	return nil, errNotAcceptable
}

func accepts(accept []string, ct string) bool {
	major, _, _ := strings.Cut(ct, "/")
	for _, a := range accept {
		if a == ct || a == "*/*" || a == major+"/*" {
			return true
		}
	}
	return false
}

// acceptable returns the content types of an event's providers, for Accept in a 406.
func (r *Registry) contentTypes(event string) []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	var out []string
	for _, p := range r.providers {
		if p.Event == event && !slices.Contains(out, p.ContentType) {
			out = append(out, p.ContentType)
		}
	}
	return out
}

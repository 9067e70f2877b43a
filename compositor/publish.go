package compositor

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/presencehub/presencehub/compositor/dialoginfo"
	"github.com/presencehub/presencehub/compositor/msgsummary"
	"github.com/presencehub/presencehub/compositor/pidf"
	"github.com/presencehub/presencehub/compositor/store"
)

// PublishRequest is what the SIP layer extracted from a PUBLISH.
type PublishRequest struct {
	Resource    string   // canonical AOR "sip:user@domain" of the Request-URI
	Event       string   // Event header value without parameters ("" when missing)
	IfMatch     []string // every SIP-If-Match value (exactly one is valid; >1 -> 400)
	Expires     int      // granted lifetime in seconds (the SIP layer applied its expiry policy); 0 removes
	ContentType string   // media type without parameters, lower-case; "" when no body
	Body        []byte   // kept by the store as it is (store.Publication): not modified after Publish
	Publisher   string   // identity that published (JWT sub), kept for the admin API
	// EndingOnly: Expires is shorter than the SIP layer's expiry policy
	// allows for state that goes on (siprule.ExpiryPolicy.GrantEnding); the
	// PUBLISH is taken only if it ends state (endsState), else ErrTooBrief.
	EndingOnly bool
}

// ErrTooBrief refuses an EndingOnly PUBLISH that does not end state; the
// SIP layer answers it with its policy's 423 and Min-Expires.
var ErrTooBrief = &Error{Code: 423, Reason: "Interval Too Brief"}

// PublishResult is the 200 answer: SIP-ETag and Expires (0 = removed).
type PublishResult struct {
	ETag    string
	Expires int
}

// Publish processes a PUBLISH as RFC 3903 §6 says. A refusal is an *Error
// (errors.As) carrying the SIP status and headers.
func (c *Compositor) Publish(ctx context.Context, r PublishRequest) (PublishResult, error) {
	now := c.now()

	// Step 1: the event package.
	if r.Event != EventPresence && r.Event != EventDialog && r.Event != EventMessageSummary {
		return PublishResult{}, &Error{Code: 489, Reason: badEventReason(r.Event), AllowEvents: allowEvents}
	}
	k := key{r.Resource, r.Event}
	// The resource's state in memory (lazy.go: read from the store once).
	if err := c.cache.ensure(ctx, r.Resource); err != nil {
		return PublishResult{}, storeError("load", err)
	}

	// Step 2: the SIP-If-Match precondition.
	var old *entry
	switch len(r.IfMatch) {
	case 0:
	case 1:
		var err error
		if old, err = c.lookup(ctx, k, r.IfMatch[0], now); err != nil {
			return PublishResult{}, err
		}
	default:
		return PublishResult{}, &Error{Code: 400, Reason: "Bad Request: more than one SIP-If-Match entity-tag"}
	}

	// Step 3: the expiration, as the SIP layer granted it (423 and the
	// maximum are its expiry policy's).
	if r.Expires < 0 {
		return PublishResult{}, &Error{Code: 400, Reason: "Bad Request: negative expiry"}
	}
	exp := time.Duration(r.Expires) * time.Second

	// Step 4: the body.
	var pb parsed // on the stack: nothing keeps body itself
	var body *parsed
	if len(r.Body) > 0 {
		if err := c.parseBody(r, &pb); err != nil {
			return PublishResult{}, err
		}
		body = &pb
	} else if old == nil {
		return PublishResult{}, &Error{Code: 400, Reason: "Bad Request: initial PUBLISH without body"}
	}
	if r.EndingOnly && !endsState(body, old) {
		return PublishResult{}, ErrTooBrief
	}

	// Step 5: store, atomically; step 6: a new entity-tag every time.
	res := PublishResult{ETag: newETag(), Expires: int(exp / time.Second)}
	if exp == 0 {
		if old != nil {
			rev, err := c.store.Delete(ctx, old.pub.ID, old.pub.Rev)
			if err != nil {
				return PublishResult{}, storeError("remove", err)
			}
			gone := old.pub
			gone.Rev = rev
			c.cache.apply(store.Change{Kind: store.ChangeDelete, Rev: rev, Pub: gone}, nil)
		}
		// Without SIP-If-Match the state expires at once: nothing to keep.
		return res, nil
	}
	if old == nil && c.maxPer > 0 {
		n, err := c.publications(ctx, r.Publisher)
		if err != nil {
			return PublishResult{}, storeError("count", err)
		}
		if n >= c.maxPer {
			return PublishResult{}, &Error{Code: 503, Reason: "Service Unavailable - too many publications for this publisher", RetryAfter: 60,
				Limit: "publications_per_user"}
		}
	}
	if err := c.bounds(k, old, body); err != nil {
		return PublishResult{}, err
	}
	p, m := c.nextPublication(k, old, r, body, now, exp, res.ETag)
	if body == nil {
		pb = parsed{presence: old.presence, dialogs: old.dialogs, summary: old.summary}
		body = &pb
	}
	body.meta, body.hasMeta = m, true // what p.Meta encodes: not decoded again
	// The feed may bring the write before it is applied below: it takes
	// the parsed body instead of parsing the stored one again.
	c.cache.takeOff(p, *body)
	var err error
	if old == nil {
		p, err = c.store.Create(ctx, p)
	} else {
		p, err = c.store.Replace(ctx, p, old.pub.Rev)
	}
	if err != nil {
		c.cache.land(res.ETag)
		return PublishResult{}, storeError("store", err)
	}
	c.cache.apply(store.Change{Kind: store.ChangePut, Rev: p.Rev, Pub: p}, body)
	c.cache.land(res.ETag)
	return res, nil
}

// lookup finds the publication a SIP-If-Match names: in memory first, then
// in the store (another node, or a feed that lags).
func (c *Compositor) lookup(ctx context.Context, k key, etag string, now time.Time) (*entry, error) {
	if e := c.cache.byTag(etag); e != nil {
		if e.pub.Resource != k.resource || e.pub.Event != k.event || !e.pub.Expires.After(now) {
			return nil, errNoMatch()
		}
		return e, nil
	}
	p, err := c.store.FindByETag(ctx, k.resource, etag)
	if errors.Is(err, store.ErrNotFound) {
		return nil, errNoMatch()
	}
	if err != nil {
		return nil, storeError("find", err)
	}
	if p.Event != k.event {
		return nil, errNoMatch()
	}
	e := &entry{pub: p, meta: decodeMeta(p.Meta)}
	pb := c.cache.parse(p)
	e.presence, e.dialogs, e.summary = pb.presence, pb.dialogs, pb.summary
	return e, nil
}

// errNoMatch is the 412 of a SIP-If-Match that names no live publication
// of the request's resource and event.
func errNoMatch() error {
	return &Error{Code: 412, Reason: "Conditional Request Failed - no live publication has this SIP-If-Match entity-tag"}
}

// parseBody is RFC 3903 §6 step 4 for a request with a body, into out.
func (c *Compositor) parseBody(r PublishRequest, out *parsed) error {
	want := c.ContentType(r.Event)
	if r.ContentType != want {
		return &Error{Code: 415, Reason: "Unsupported Media Type - Event " + r.Event + " takes " + want, Accept: want}
	}
	if len(r.Body) > c.cache.lim.MaxBytes {
		return &Error{Code: 413, Reason: fmt.Sprintf("Request Entity Too Large - body above %d bytes", c.cache.lim.MaxBytes)}
	}
	var entity string
	var err error
	switch r.Event {
	case EventPresence:
		if out.presence, err = pidf.Parse(r.Body, c.cache.lim); err == nil {
			entity = out.presence.Entity
		}
	case EventDialog:
		if out.dialogs, err = dialoginfo.Parse(r.Body, c.cache.lim); err == nil {
			entity = out.dialogs.Entity
		}
	case EventMessageSummary:
		// No entity: the resource is the account the Request-URI names
		// (RFC 3842 §3.2); Message-Account is kept as published.
		out.summary, err = msgsummary.Parse(r.Body)
		entity = r.Resource
	}
	if err != nil {
		return &Error{Code: 400, Reason: reason("Bad Request", err), Err: err}
	}
	if !sameAOR(entity, r.Resource) {
		err := fmt.Errorf("entity %q is not %q", entity, r.Resource)
		return &Error{Code: 400, Reason: reason("Bad Request: the body's entity is not the Request-URI's AOR", err), Err: err}
	}
	return nil
}

// nextPublication builds the version to store: a new one, a refresh (no
// body) or a modification (body), and the bookkeeping its Meta encodes.
func (c *Compositor) nextPublication(k key, old *entry, r PublishRequest, body *parsed, now time.Time, exp time.Duration, etag string) (store.Publication, meta) {
	var p store.Publication
	var m meta
	if old == nil {
		p = store.Publication{ID: newID(), Resource: k.resource, Event: k.event, Created: now}
	} else {
		p = old.pub
		m = old.meta
	}
	p.ETag = etag
	p.Expires = now.Add(exp)
	if r.Publisher != "" {
		p.Publisher = r.Publisher
	}
	if body != nil {
		p.Body = r.Body
		p.ContentType = r.ContentType
		p.Updated = now
	}
	if k.event == EventDialog {
		m = c.dialogMeta(k, old, body, now)
	}
	p.Meta = m.encode()
	return p, m
}

// bounds refuses a PUBLISH that would take the resource's composed view
// past the configured size: too many publications (503: others may expire)
// or too many dialogs (413). A PUBLISH that adds no dialogs always passes,
// so a resource over the bound can still be cleared.
func (c *Compositor) bounds(k key, old *entry, body *parsed) error {
	pubs, dialogs := c.cache.size(k)
	if old == nil && pubs >= c.maxPubs {
		return &Error{Code: 503, Reason: "Service Unavailable - too many publications for this resource", RetryAfter: 60,
			Limit: "publications_per_resource"}
	}
	if body == nil || body.dialogs == nil {
		return nil
	}
	had, has := len(dialogsOf(old)), len(body.dialogs.Dialogs)
	if has > had && dialogs-had+has > c.maxDialogs {
		return &Error{Code: 413, Reason: "Request Entity Too Large - too many dialogs for this resource", Limit: "dialogs_per_resource",
			Err: fmt.Errorf("%d dialogs over the resource's publications, limit %d", dialogs-had+has, c.maxDialogs)}
	}
	return nil
}

// storeError maps a failed store operation to the SIP answer. Nothing
// changed: the store's write is atomic.
func storeError(op string, err error) error {
	switch {
	case errors.Is(err, store.ErrConflict), errors.Is(err, store.ErrNotFound):
		// Lost a compare-and-swap race, or the state expired meanwhile.
		return &Error{Code: 412, Reason: "Conditional Request Failed", Err: err}
	case errors.Is(err, store.ErrBusy), errors.Is(err, store.ErrClosed):
		return &Error{Code: 503, Reason: "Service Unavailable", RetryAfter: defaultRetryAfter, Err: fmt.Errorf("%s: %w", op, err), StoreFault: true}
	}
	return &Error{Code: 500, Reason: "Server Internal Error", Err: fmt.Errorf("%s: %w", op, err), StoreFault: true}
}

// badEventReason names the refused event package.
func badEventReason(event string) string {
	if event == "" {
		return "Bad Event: no Event header (this hub takes " + allowEvents + ")"
	}
	return reason("Bad Event", fmt.Errorf("%q is not published here (%s are)", event, allowEvents))
}

// endsState reports whether a PUBLISH only ends state: a dialog-info body
// (or, for a refresh, the stored one) in which every dialog is terminated
// (or that lists none: no call left to show).
// Such a PUBLISH is never refused as too brief (RFC 3903 §6 step 3 makes
// 423 a MAY): Kamailio's pua_dialoginfo sends the hang-up with
// "Expires: 11" and does not retry a 423, which would leave the lamp busy
// for the call's whole lifetime (12 h by default). The minimum stops
// publishers from keeping live state with frequent refreshes; state that is
// over needs no refreshes.
func endsState(body *parsed, old *entry) bool {
	var d *dialoginfo.Document
	switch {
	case body != nil:
		d = body.dialogs
	case old != nil:
		d = old.dialogs
	}
	if d == nil {
		return false // presence: open and closed are both state that goes on
	}
	for i := range d.Dialogs {
		if !d.Dialogs[i].Terminated() {
			return false
		}
	}
	return true
}

package notifier

import (
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/presencehub/presencehub/internal/siprule"
	"github.com/presencehub/presencehub/server/auth"
	"github.com/presencehub/presencehub/server/flow"
)

// HandleSubscribe processes a SUBSCRIBE that arrived on fl from id (already
// authenticated; nil is refused with 401 by the caller). It answers on fl
// and, for an accepted request, queues the NOTIFY after the 200 on the same
// flow (RFC 6665 §4.2.1). It returns the status code it answered with.
func (n *Notifier) HandleSubscribe(req *sip.Request, fl *flow.Flow, id *auth.Identity) int {
	send, res := n.subscribe(req, fl, id)
	code := 200
	if res != nil {
		siprule.SetServer(res)
		code = res.StatusCode
		_ = fl.Respond(res)
	}
	send()
	return code
}

func reply(req *sip.Request, code int, reason string) *sip.Response {
	return sip.NewResponseFromRequest(req, code, reason, nil)
}

func (n *Notifier) subscribe(req *sip.Request, fl *flow.Flow, id *auth.Identity) (func(), *sip.Response) {
	pkg, eventValue, ok := siprule.Event(req)
	if !ok {
		return noop, reply(req, 400, "Bad Request - missing Event header")
	}
	if !containsStr(n.cfg.Providers.Events(), pkg) {
		res := reply(req, 489, "Bad Event")
		res.AppendHeader(sip.NewHeader("Allow-Events", strings.Join(n.cfg.Providers.Events(), ", ")))
		return noop, res
	}
	requested, err := siprule.Expires(req)
	if err != nil {
		return noop, reply(req, 400, "Bad Request - invalid Expires")
	}
	pol := n.policy(pkg)
	grant, ok := pol.Grant(requested)
	if !ok {
		return noop, pol.TooBrief(req)
	}
	expires := siprule.Seconds(grant)
	if tag, ok := req.To().Params.Get("tag"); ok && tag != "" {
		if n.cfg.AdoptDialogs && !n.knows(req, tag) {
			return n.adopt(req, fl, id, pkg, eventValue, expires)
		}
		return n.inDialog(req, fl, id, tag, expires)
	}
	return n.initial(req, req.Recipient, fl, id, pkg, eventValue, expires, false)
}

// newDialogKey is the dialog of an initial SUBSCRIBE answered with
// localTag; it copies Call-ID and the From tag so that the subscription
// holds no string of the parsed request (the tag is part of its From).
func newDialogKey(req *sip.Request, localTag string) dialogKey {
	return dialogKey{strings.Clone(req.CallID().Value()), localTag, strings.Clone(req.From().Params.GetOr("tag", ""))}
}

// knows reports whether the dialog of an in-dialog SUBSCRIBE is here
// (live or ended).
func (n *Notifier) knows(req *sip.Request, localTag string) bool {
	key := dialogKey{req.CallID().Value(), localTag, req.From().Params.GetOr("tag", "")}
	n.mu.RLock()
	defer n.mu.RUnlock()
	return n.dialogs[key] != nil
}

// adoptBase is where CSeq and version of an adopted dialog start: seconds
// since 2023-11-14, so above the count of NOTIFYs any earlier hub can have
// sent in that dialog, and below 2^31 (RFC 3261 §8.1.1.5) until 2091.
func adoptBase() uint32 { return uint32(time.Now().Unix() - 1_700_000_000) }

// adopt takes over a subscription dialog created by another hub: the
// resource is the To URI (the watched AOR; the Request-URI of an in-dialog
// request is the hub's Contact), the dialog keeps its tags and Call-ID.
func (n *Notifier) adopt(req *sip.Request, fl *flow.Flow, id *auth.Identity, pkg, eventValue string, expires int) (func(), *sip.Response) {
	to := req.To().Address
	return n.initial(req, sip.Uri{Scheme: to.Scheme, User: to.User, Host: to.Host}, fl, id, pkg, eventValue, expires, true)
}

// initial creates a subscription for the watched resource uri: an initial
// SUBSCRIBE, or an adopted dialog.
func (n *Notifier) initial(req *sip.Request, uri sip.Uri, fl *flow.Flow, id *auth.Identity, pkg, eventValue string, expires int, adopted bool) (func(), *sip.Response) {
	// Initial SUBSCRIBE: the Request-URI names the watched resource.
	if (uri.Scheme != "sip" && uri.Scheme != "sips") || uri.User == "" {
		return noop, reply(req, 404, "Not Found - not a user of this domain")
	}
	if lt, res := n.listTarget(req, pkg, uri); res != nil {
		return noop, res
	} else if lt != nil && adopted {
		// A list dialog is not taken over (a request-contained list is
		// gone with its hub): the client subscribes afresh.
		return noop, reply(req, 481, "Subscription Does Not Exist")
	} else if lt != nil {
		return n.subscribeList(req, fl, id, pkg, eventValue, expires, lt)
	}
	if !id.CanSubscribe(uri.User, uri.Host) {
		// Same answer whether or not the resource has state: a watcher
		// learns nothing about AORs it may not watch.
		return noop, reply(req, 403, "Forbidden - token may not watch this AOR")
	}
	contact := req.Contact()
	if contact == nil {
		return noop, reply(req, 400, "Bad Request - missing Contact")
	}
	if !validTarget(contact.Address) {
		// It becomes every NOTIFY's Request-URI (RFC 6665 §4.2.2).
		return noop, reply(req, 400, "Bad Request - invalid Contact URI")
	}
	info := SubscriptionInfo{
		Resource: siprule.AOR(uri.User, uri.Host),
		Event:    pkg,
		Accept:   acceptList(req),
		Watcher:  id.Sub,
	}
	if h := req.GetHeader("User-Agent"); h != nil {
		info.UserAgent = h.Value()
	}
	p, err := n.cfg.Providers.choose(info)
	switch {
	case errors.Is(err, errNotAcceptable):
		res := reply(req, 406, "Not Acceptable")
		res.AppendHeader(sip.NewHeader("Accept", strings.Join(n.cfg.Providers.contentTypes(pkg), ", ")))
		return noop, res
	case err != nil:
		res := reply(req, 489, "Bad Event")
		res.AppendHeader(sip.NewHeader("Allow-Events", strings.Join(n.cfg.Providers.Events(), ", ")))
		return noop, res
	}

	res := reply(req, 200, "OK")
	localTag, _ := res.To().Params.Get("tag")
	res.AppendHeader(sip.NewHeader("Contact", n.cfg.Contact))
	res.AppendHeader(sip.NewHeader("Expires", strconv.Itoa(expires)))
	s := &subscription{
		n:        n,
		key:      newDialogKey(req, localTag),
		res:      resourceKey{info.Resource, pkg},
		watcher:  info.Watcher,
		provider: p,
		expires:  time.Now().Add(time.Duration(expires) * time.Second),
		flow:     fl,
	}
	if adopted {
		base := adoptBase()
		s.cseq, s.version = base, uint64(base)
		n.log.Info("subscription dialog adopted from another hub", "resource", info.Resource, "event", pkg)
	}
	if p.Variant != nil {
		s.variant = p.Variant(info)
	}
	n.dialogHeaders(s, req, res, contact, eventValue, "")

	n.replaceZombies(info)
	if !n.add(s, fl, nil) {
		res := reply(req, 503, "Service Unavailable - subscription limit reached")
		res.AppendHeader(sip.NewHeader("Retry-After", "60"))
		return noop, res
	}
	// 200 first, then the NOTIFY with full state on the same flow.
	_ = fl.Respond(res)
	v := n.cfg.Views.View(info.Resource, pkg)
	last := n.sharedBody(s, v.Rev)
	if last == nil {
		body, err := p.Render(v, s.variant)
		if err != nil {
			n.log.Error("render NOTIFY body", "provider", p.Name, "resource", info.Resource, "err", err)
			body = Body{VersionAt: -1}
		}
		last = &body
	}
	body := *last
	s.mu.Lock()
	s.lastRev = v.Rev
	s.last = last
	var send sendOp
	if expires == 0 {
		// A fetch (RFC 6665 §4.4.3): one NOTIFY with state, terminated.
		s.final = true
		send = s.queueLocked(outgoing{body: body, reason: ReasonTimeout})
	} else {
		send = s.queueLocked(outgoing{body: body})
		n.expiry.schedule(s, s.expires)
	}
	s.mu.Unlock()
	return send.run, nil
}

// sharedBody is the body another subscription to the same resource, of the
// same provider and variant, holds for revision rev (nil: none): watchers
// of one resource share one rendering of its state, as after a fan-out.
// A few are looked at, not all.
func (n *Notifier) sharedBody(s *subscription, rev uint64) *Body {
	n.mu.RLock()
	defer n.mu.RUnlock()
	set := n.byResource[s.res]
	for i := 0; i < len(set) && i < 4; i++ {
		o := set[len(set)-1-i]
		if o == s || o.provider != s.provider || o.variant != s.variant {
			continue
		}
		o.mu.Lock()
		last, ok := o.last, o.lastRev == rev
		o.mu.Unlock()
		if ok && last != nil && last.Data != nil {
			return last
		}
	}
	return nil
}

// inDialog handles a refresh or un-SUBSCRIBE (RFC 6665 §4.1.2.2, §4.1.2.3).
func (n *Notifier) inDialog(req *sip.Request, fl *flow.Flow, id *auth.Identity, localTag string, expires int) (func(), *sip.Response) {
	key := dialogKey{req.CallID().Value(), localTag, req.From().Params.GetOr("tag", "")}
	n.mu.RLock()
	s := n.dialogs[key]
	n.mu.RUnlock()
	if s == nil {
		return noop, reply(req, 481, "Subscription Does Not Exist")
	}
	if s.watcher != id.Sub {
		return noop, reply(req, 403, "Forbidden - not your subscription")
	}
	s.mu.Lock()
	final, done := s.final, s.done
	s.mu.Unlock()
	if final || done {
		return noop, reply(req, 481, "Subscription Does Not Exist")
	}
	// Authorization is the refreshing identity's, not the one that made the
	// subscription: a token that may no longer watch the resource ends it
	// (RFC 6665 §4.2.2 "rejected"), and it is not rebound to this flow.
	if user, host := aorParts(s.res.resource); s.list == nil && !id.CanSubscribe(user, host) {
		return func() { s.terminate(ReasonRejected) }, reply(req, 403, "Forbidden - token may not watch this AOR")
	}
	if s.list == nil && expires != 0 {
		// A state still waiting (a NOTIFY lost with the old socket) goes
		// out first, as the current state: the change that made it stale
		// may be committed but not yet fanned out, and a reconnected lamp
		// would show for a moment the state it had before it went away.
		v := n.cfg.Views.View(s.res.resource, s.res.event)
		if body, err := s.provider.Render(v, s.variant); err == nil {
			s.mu.Lock()
			if s.hasNext && s.next.reason == "" && v.Rev >= s.lastRev {
				s.next = outgoing{body: body}
			}
			s.mu.Unlock()
		}
	}
	// A client that reconnected keeps using its dialogs on the new flow.
	resend := n.rebind(s, fl)
	res := reply(req, 200, "OK")
	res.AppendHeader(sip.NewHeader("Contact", n.cfg.Contact))
	res.AppendHeader(sip.NewHeader("Expires", strconv.Itoa(expires)))
	_ = fl.Respond(res)
	resend.run()
	if expires == 0 {
		s.terminate(ReasonTimeout)
		return noop, nil
	}
	s.mu.Lock()
	s.expires = time.Now().Add(time.Duration(expires) * time.Second)
	n.expiry.reschedule(s, s.expires)
	s.mu.Unlock()
	if s.list != nil {
		// Each member is authorized anew by the refreshing identity.
		s.mu.Lock()
		entries, names := s.list.entries, s.list.names
		s.mu.Unlock()
		n.applyMembers(s, entries, names, id)
		s.refreshList()
		return noop, nil
	}
	v := n.cfg.Views.View(s.res.resource, s.res.event)
	body, err := s.provider.Render(v, s.variant)
	if err != nil {
		return noop, nil
	}
	s.offer(v.Rev, &body, true, nil)
	return noop, nil
}

// replaceZombies ends detached subscriptions of the same watcher to the same
// resource: a reloaded page subscribes afresh instead of piling up dialogs.
func (n *Notifier) replaceZombies(info SubscriptionInfo) {
	n.mu.RLock()
	var zombies []*subscription
	zombies = append(zombies, n.mine[watcherKey{info.Watcher, resourceKey{info.Resource, info.Event}}]...)
	n.mu.RUnlock()
	for _, s := range zombies {
		if f := s.flowSnapshot(); f == nil || f.Closed() {
			n.remove(s)
		}
	}
}

// aorParts splits a canonical AOR "sip:user@host" (siprule.AOR).
func aorParts(aor string) (user, host string) {
	i := strings.LastIndexByte(aor, '@')
	if i < 0 || !strings.HasPrefix(aor, "sip:") {
		return "", ""
	}
	return aor[len("sip:"):i], aor[i+1:]
}

func acceptList(req *sip.Request) []string {
	var out []string
	for _, h := range req.GetHeaders("Accept") {
		for _, part := range strings.Split(h.Value(), ",") {
			mt, _, _ := strings.Cut(part, ";")
			mt = strings.ToLower(strings.TrimSpace(mt))
			if mt != "" {
				out = append(out, mt)
			}
		}
	}
	return out
}

func containsStr(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// validTarget accepts a sip/sips URI whose host is a host name or an IP
// literal, so that it can be written as a Request-URI.
func validTarget(u sip.Uri) bool {
	if u.Wildcard || (u.Scheme != "sip" && u.Scheme != "sips") || !siprule.ValidHost(u.Host) {
		return false
	}
	// Nothing in it may break the request line (spaces, controls, brackets).
	t := u.String()
	return !strings.ContainsAny(t, " \t\r\n<>\"") && siprule.ValidText(t)
}

// dialogHeaders serializes into s.dialog the NOTIFY request line and the
// headers that never change in the dialog (RFC 6665 §4.2.2, §8.2.3): From =
// the 200's To, To = the SUBSCRIBE's From, the route set from Record-Route
// in order (RFC 3261 §12.1.1), Event with the SUBSCRIBE's id; extra is
// written after them as is. Max-Forwards and the hub's Contact are the
// same in every dialog: build writes them (before From, and before Event).
func (n *Notifier) dialogHeaders(s *subscription, req *sip.Request, res *sip.Response, contact *sip.ContactHeader, eventValue, extra string) {
	target := contact.Address.String()
	from, to := res.To().Value(), req.From().Value()
	size := len("NOTIFY  SIP/2.0\r\nFrom: \r\nTo: \r\nCall-ID: \r\nEvent: \r\n") + len(target) + len(from) + len(to) + len(s.key.callID) + len(eventValue) + len(extra)
	routes := req.GetHeaders("Record-Route")
	for _, h := range routes {
		size += len("Route: \r\n") + len(h.Value())
	}
	b := make([]byte, 0, size)
	b = append(b, "NOTIFY "...)
	b = append(b, target...)
	b = append(b, " SIP/2.0\r\n"...)
	s.viaAt = int32(len(b))
	b = append(b, "From: "...)
	b = append(b, from...)
	b = append(b, "\r\nTo: "...)
	b = append(b, to...)
	b = append(b, "\r\nCall-ID: "...)
	b = append(b, s.key.callID...)
	b = append(b, "\r\n"...)
	for _, h := range routes {
		b = append(b, "Route: "...)
		b = append(b, h.Value()...)
		b = append(b, "\r\n"...)
	}
	s.fixedAt = int32(len(b))
	b = append(b, "Event: "...)
	b = append(b, eventValue...)
	b = append(b, "\r\n"...)
	b = append(b, extra...)
	s.dialog = b
}

package notifier

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/presencehub/presencehub/internal/siprule"
	"github.com/presencehub/presencehub/server/auth"
	"github.com/presencehub/presencehub/server/flow"
)

// ResourceListsType is the media type of a request-contained list (RFC 5367, RFC 4826).
const ResourceListsType = "application/resource-lists+xml"

// listTarget is what a list SUBSCRIBE watches.
type listTarget struct {
	uri     string // the list URI
	name    string // stored list name ("" for a request-contained list)
	entries []string
	names   map[string]string
}

// listTarget decides whether an initial SUBSCRIBE is for a resource list:
// a stored list (sip:<name>@<domain>) or a request-contained one (sip:rls@<domain>
// with Require: recipient-list-subscribe). It returns the list, or the
// answer refusing it, or neither for an ordinary SUBSCRIBE.
func (n *Notifier) listTarget(req *sip.Request, pkg string, uri sip.Uri) (*listTarget, *sip.Response) {
	if !strings.EqualFold(uri.Host, n.cfg.Domain) {
		return nil, nil
	}
	var t *listTarget
	switch {
	case uri.User == RLSUser && hasOption(req, "Require", "", "recipient-list-subscribe"):
		t = &listTarget{uri: siprule.AOR(RLSUser, n.cfg.Domain)}
	default:
		l, ok := n.storedList(uri.User)
		if !ok {
			return nil, nil
		}
		if l.Event != pkg {
			res := reply(req, 489, "Bad Event - list "+l.Name+" is a "+l.Event+" list")
			res.AppendHeader(sip.NewHeader("Allow-Events", l.Event))
			return nil, res
		}
		t = &listTarget{uri: siprule.AOR(l.Name, n.cfg.Domain), name: l.Name, entries: l.Members, names: l.Names}
	}
	// RFC 4662 §5.1: a subscriber that does not support lists gets 421.
	if !hasOption(req, "Supported", "k", "eventlist") {
		res := reply(req, 421, "Extension Required - eventlist (RFC 4662)")
		res.AppendHeader(sip.NewHeader("Require", "eventlist"))
		return nil, res
	}
	if t.name == "" {
		entries, names, res := n.requestList(req)
		if res != nil {
			return nil, res
		}
		t.entries, t.names = entries, names
	}
	if len(t.entries) > n.cfg.MaxListMembers {
		return nil, reply(req, 413, fmt.Sprintf("Request Entity Too Large - list above %d members", n.cfg.MaxListMembers))
	}
	return t, nil
}

// hasOption reports whether an option-tag list header (Require, Supported)
// holds tag.
func hasOption(req *sip.Request, name, compact, tag string) bool {
	hs := req.GetHeaders(name)
	if compact != "" {
		hs = append(hs, req.GetHeaders(compact)...)
	}
	for _, h := range hs {
		for _, t := range strings.Split(h.Value(), ",") {
			if strings.EqualFold(strings.TrimSpace(t), tag) {
				return true
			}
		}
	}
	return false
}

// requestList reads the resource-lists body of an RFC 5367 SUBSCRIBE.
func (n *Notifier) requestList(req *sip.Request) ([]string, map[string]string, *sip.Response) {
	ct := ""
	if h := req.ContentType(); h != nil {
		ct, _, _ = strings.Cut(h.Value(), ";")
		ct = strings.ToLower(strings.TrimSpace(ct))
	}
	body := req.Body()
	if len(body) == 0 {
		return nil, nil, reply(req, 400, "Bad Request - recipient-list-subscribe without a resource list body")
	}
	if ct != ResourceListsType {
		res := reply(req, 415, "Unsupported Media Type - the list must be "+ResourceListsType)
		res.AppendHeader(sip.NewHeader("Accept", ResourceListsType))
		return nil, nil, res
	}
	entries, names, err := parseResourceLists(body, n.cfg.MaxListMembers)
	if errors.Is(err, errTooManyEntries) {
		return nil, nil, reply(req, 413, fmt.Sprintf("Request Entity Too Large - list above %d members", n.cfg.MaxListMembers))
	}
	if err != nil {
		return nil, nil, reply(req, 400, "Bad Request - resource list: "+err.Error())
	}
	if len(entries) == 0 {
		return nil, nil, reply(req, 400, "Bad Request - resource list has no entries")
	}
	return entries, names, nil
}

var errTooManyEntries = errors.New("too many entries")

// parseResourceLists reads the entry URIs and display names of an RFC 4826
// resource-lists document, nested lists flattened in document order. It
// stops at max+1 entries.
func parseResourceLists(body []byte, max int) ([]string, map[string]string, error) {
	dec := xml.NewDecoder(bytes.NewReader(body))
	var entries []string
	names := map[string]string{}
	depth, root := 0, false
	inEntry, inName := "", false
	var name strings.Builder
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, nil, err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			depth++
			if depth > 32 {
				return nil, nil, errors.New("nested deeper than 32")
			}
			switch {
			case depth == 1:
				if t.Name.Local != "resource-lists" {
					return nil, nil, fmt.Errorf("root element is %q, not resource-lists", t.Name.Local)
				}
				root = true
			case t.Name.Local == "entry":
				for _, a := range t.Attr {
					if a.Name.Local == "uri" {
						inEntry = strings.TrimSpace(a.Value)
					}
				}
				if inEntry == "" {
					return nil, nil, errors.New("entry without uri")
				}
				entries = append(entries, inEntry)
				if len(entries) > max {
					return entries, nil, errTooManyEntries
				}
			case t.Name.Local == "display-name" && inEntry != "":
				inName = true
				name.Reset()
			}
		case xml.CharData:
			if inName {
				name.Write(t)
			}
		case xml.EndElement:
			depth--
			switch t.Name.Local {
			case "entry":
				inEntry = ""
			case "display-name":
				if inName && inEntry != "" {
					names[inEntry] = strings.TrimSpace(name.String())
				}
				inName = false
			}
		}
	}
	if !root {
		return nil, nil, errors.New("no resource-lists element")
	}
	return entries, names, nil
}

// subscribeList accepts an initial list SUBSCRIBE (RFC 4662 §5): 200, then a
// NOTIFY with full state; the members are watched from now on.
func (n *Notifier) subscribeList(req *sip.Request, fl *flow.Flow, id *auth.Identity, pkg, eventValue string, expires int, t *listTarget) (func(), *sip.Response) {
	contact := req.Contact()
	if contact == nil {
		return noop, reply(req, 400, "Bad Request - missing Contact")
	}
	if !validTarget(contact.Address) {
		return noop, reply(req, 400, "Bad Request - invalid Contact URI")
	}
	info := SubscriptionInfo{Resource: t.uri, Event: pkg, Watcher: id.Sub}
	// The members' documents: Accept without the list's own types.
	for _, a := range acceptList(req) {
		if !strings.HasPrefix(a, "multipart/") && a != RLMIType {
			info.Accept = append(info.Accept, a)
		}
	}
	if h := req.GetHeader("User-Agent"); h != nil {
		info.UserAgent = h.Value()
	}
	p, err := n.cfg.Providers.choose(info)
	switch {
	case errors.Is(err, errNotAcceptable):
		res := reply(req, 406, "Not Acceptable")
		res.AppendHeader(sip.NewHeader("Accept", "multipart/related, "+RLMIType+", "+strings.Join(n.cfg.Providers.contentTypes(pkg), ", ")))
		return noop, res
	case err != nil:
		res := reply(req, 489, "Bad Event")
		res.AppendHeader(sip.NewHeader("Allow-Events", strings.Join(n.cfg.Providers.Events(), ", ")))
		return noop, res
	}
	specs := n.resolve(t.entries, t.names, id)

	res := reply(req, 200, "OK")
	localTag, _ := res.To().Params.Get("tag")
	res.AppendHeader(sip.NewHeader("Contact", n.cfg.Contact))
	res.AppendHeader(sip.NewHeader("Expires", strconv.Itoa(expires)))
	res.AppendHeader(sip.NewHeader("Require", "eventlist"))
	l := &listState{uri: t.uri, name: t.name, id: id, mprov: p, entries: t.entries, names: t.names}
	if p.Variant != nil {
		l.mvariant = p.Variant(info)
	}
	l.init(n)
	s := &subscription{
		n:        n,
		key:      newDialogKey(req, localTag),
		res:      resourceKey{t.uri, pkg},
		watcher:  info.Watcher,
		provider: p,
		list:     l,
		expires:  time.Now().Add(time.Duration(expires) * time.Second),
		flow:     fl,
	}
	n.dialogHeaders(s, req, res, contact, eventValue, "Require: eventlist\r\n")
	l.setMembersLocked(specs) // not shared yet
	n.replaceZombies(info)
	if !n.add(s, fl, specs) {
		res := reply(req, 503, "Service Unavailable - subscription limit reached")
		res.AppendHeader(sip.NewHeader("Retry-After", "60"))
		return noop, res
	}
	_ = fl.Respond(res)
	s.loadMembers(specs)
	s.mu.Lock()
	l.full = true
	var send sendOp
	if expires == 0 {
		s.final, l.fetch = true, true
		send = s.queueLocked(outgoing{reason: ReasonTimeout})
	} else {
		send = s.queueLocked(outgoing{})
		n.expiry.schedule(s, s.expires)
	}
	s.mu.Unlock()
	return send.run, nil
}

// refreshList answers a refresh of a list subscription with full state
// (RFC 4662 §5.2, RFC 6665 §4.2.1.2).
func (s *subscription) refreshList() {
	s.mu.Lock()
	if s.final || s.done {
		s.mu.Unlock()
		return
	}
	s.list.full = true
	send := s.queueLocked(outgoing{})
	s.mu.Unlock()
	send.run()
}

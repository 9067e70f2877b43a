package registrar

import (
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/presencehub/presencehub/internal/siprule"
)

// DefaultExpiry is the binding policy for fields left zero in
// Config.Expiry: 600 s when the client asks for none, 60 s minimum, 3600 s
// maximum.
var DefaultExpiry = siprule.ExpiryPolicy{Default: 600 * time.Second, Min: 60 * time.Second, Max: 3600 * time.Second}

// Config configures a Registrar.
type Config struct {
	Expiry siprule.ExpiryPolicy // of bindings; zero fields from DefaultExpiry
	Grace  time.Duration        // kept past expiry; default 30s
	Now    func() time.Time
	// MaxPerAOR bounds the bindings of one AOR; a REGISTER that would go
	// beyond it gets 503 + Retry-After and changes nothing. Default
	// DefaultMaxPerAOR.
	MaxPerAOR int
	// LimitHit is told when MaxPerAOR refuses a REGISTER (metrics); may be nil.
	LimitHit func(limit string)
}

// DefaultMaxPerAOR is Config.MaxPerAOR's default: far above the devices of
// one user (RFC 5626 gives each its own binding), far below what makes the
// 200, which lists every binding, costly.
const DefaultMaxPerAOR = 100

// Binding is one registered contact.
type Binding struct {
	AOR      string
	Contact  sip.ContactHeader
	Instance string // +sip.instance, with its quotes
	RegID    string
	FlowID   uint64
	Expires  time.Time
	CallID   string
}

func (b *Binding) key() string {
	if b.Instance != "" {
		return "i:" + b.Instance + ";" + b.RegID
	}
	return "u:" + b.Contact.Address.String()
}

// Registrar keeps bindings in memory: they belong to live connections.
type Registrar struct {
	cfg Config

	mu     sync.Mutex
	byAOR  map[string][]*Binding
	byFlow map[uint64]map[string]struct{} // flow → AORs it holds bindings of
}

// New returns an empty registrar.
func New(cfg Config) *Registrar {
	cfg.Expiry = cfg.Expiry.Or(DefaultExpiry)
	if cfg.Grace == 0 {
		cfg.Grace = 30 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.MaxPerAOR <= 0 {
		cfg.MaxPerAOR = DefaultMaxPerAOR
	}
	if cfg.LimitHit == nil {
		cfg.LimitHit = func(string) {}
	}
	return &Registrar{cfg: cfg, byAOR: make(map[string][]*Binding), byFlow: make(map[uint64]map[string]struct{})}
}

// Register processes a REGISTER for aor (already authorized) arriving on
// flowID and returns the response to send (RFC 3261 §10.3 steps 6–8).
func (r *Registrar) Register(req *sip.Request, aor string, flowID uint64) *sip.Response {
	defExp, err := siprule.Expires(req)
	if err != nil {
		return sip.NewResponseFromRequest(req, 400, "Bad Request - invalid Expires", nil)
	}
	contacts := req.GetHeaders("Contact")
	now := r.cfg.Now()

	r.mu.Lock()
	defer r.mu.Unlock()
	r.prune(aor, now)

	for _, h := range contacts {
		c, ok := h.(*sip.ContactHeader)
		if !ok {
			return sip.NewResponseFromRequest(req, 400, "Bad Request - invalid Contact", nil)
		}
		if c.Address.Wildcard {
			// Contact: * is valid only alone and with Expires: 0.
			if len(contacts) != 1 || defExp != 0 {
				return sip.NewResponseFromRequest(req, 400, "Bad Request - wildcard Contact needs Expires: 0", nil)
			}
			r.removeAll(aor)
			return r.answer(req, aor, now)
		}
	}
	var adds []*Binding
	var dels []string
	for _, h := range contacts {
		c := h.(*sip.ContactHeader)
		exp := defExp
		if v, ok := c.Params.Get("expires"); ok {
			n, err := siprule.ParseExpires(v)
			if err != nil {
				return sip.NewResponseFromRequest(req, 400, "Bad Request - invalid expires parameter", nil)
			}
			exp = n
		}
		grant, ok := r.cfg.Expiry.Grant(exp)
		if !ok {
			return r.cfg.Expiry.TooBrief(req)
		}
		b := &Binding{AOR: aor, Contact: *c.Clone(), FlowID: flowID, CallID: req.CallID().Value()}
		b.Instance, _ = c.Params.Get("+sip.instance")
		b.RegID, _ = c.Params.Get("reg-id")
		if grant == 0 {
			dels = append(dels, b.key())
			continue
		}
		b.Expires = now.Add(grant)
		b.Contact.Params.Remove("expires")
		adds = append(adds, b)
	}
	if r.countAfter(aor, adds, dels) > r.cfg.MaxPerAOR {
		r.cfg.LimitHit("bindings_per_aor")
		res := sip.NewResponseFromRequest(req, 503, "Service Unavailable - too many bindings for this AOR", nil)
		res.AppendHeader(sip.NewHeader("Retry-After", "60"))
		return res
	}
	for _, k := range dels {
		r.remove(aor, k)
	}
	for _, b := range adds {
		r.remove(aor, b.key())
		r.byAOR[aor] = append(r.byAOR[aor], b)
		m := r.byFlow[flowID]
		if m == nil {
			m = make(map[string]struct{})
			r.byFlow[flowID] = m
		}
		m[aor] = struct{}{}
	}
	return r.answer(req, aor, now)
}

// countAfter is how many bindings aor would have after removing dels and
// adding or replacing adds.
func (r *Registrar) countAfter(aor string, adds []*Binding, dels []string) int {
	keys := make(map[string]struct{}, len(r.byAOR[aor])+len(adds))
	for _, b := range r.byAOR[aor] {
		keys[b.key()] = struct{}{}
	}
	for _, k := range dels {
		delete(keys, k)
	}
	for _, b := range adds {
		keys[b.key()] = struct{}{}
	}
	return len(keys)
}

// answer lists the current bindings, each Contact with its remaining expires.
func (r *Registrar) answer(req *sip.Request, aor string, now time.Time) *sip.Response {
	res := sip.NewResponseFromRequest(req, 200, "OK", nil)
	maxLeft := 0
	for _, b := range r.byAOR[aor] {
		left := int(b.Expires.Sub(now).Round(time.Second) / time.Second)
		if left < 1 {
			left = 1
		}
		c := b.Contact.Clone()
		c.Params.Add("expires", strconv.Itoa(left))
		res.AppendHeader(c)
		if left > maxLeft {
			maxLeft = left
		}
	}
	if len(r.byAOR[aor]) > 0 {
		res.AppendHeader(sip.NewHeader("Expires", strconv.Itoa(maxLeft)))
	}
	return res
}

func (r *Registrar) remove(aor, key string) {
	list := r.byAOR[aor]
	for i, b := range list {
		if b.key() == key {
			r.byAOR[aor] = append(list[:i:i], list[i+1:]...)
			break
		}
	}
	if len(r.byAOR[aor]) == 0 {
		delete(r.byAOR, aor)
	}
}

func (r *Registrar) removeAll(aor string) { delete(r.byAOR, aor) }

// prune drops bindings whose expiry plus grace has passed.
func (r *Registrar) prune(aor string, now time.Time) {
	list := r.byAOR[aor]
	kept := list[:0]
	for _, b := range list {
		if now.Before(b.Expires.Add(r.cfg.Grace)) {
			kept = append(kept, b)
		}
	}
	if len(kept) == 0 {
		delete(r.byAOR, aor)
		return
	}
	r.byAOR[aor] = kept
}

// DropFlow removes every binding made over a closed flow and returns the
// AORs it held bindings of.
func (r *Registrar) DropFlow(flowID uint64) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var aors []string
	for aor := range r.byFlow[flowID] {
		list := r.byAOR[aor]
		kept := list[:0]
		for _, b := range list {
			if b.FlowID != flowID {
				kept = append(kept, b)
			}
		}
		if len(kept) < len(list) {
			aors = append(aors, aor)
		}
		if len(kept) == 0 {
			delete(r.byAOR, aor)
		} else {
			r.byAOR[aor] = kept
		}
	}
	delete(r.byFlow, flowID)
	return aors
}

// Bindings returns copies of the live bindings of aor ("" for all), sorted by AOR.
func (r *Registrar) Bindings(aor string) []Binding {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.cfg.Now()
	var out []Binding
	for a, list := range r.byAOR {
		if aor != "" && a != aor {
			continue
		}
		for _, b := range list {
			if now.Before(b.Expires.Add(r.cfg.Grace)) {
				out = append(out, *b)
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].AOR < out[j].AOR })
	return out
}

// Count is the number of live bindings (metrics).
func (r *Registrar) Count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, l := range r.byAOR {
		n += len(l)
	}
	return n
}

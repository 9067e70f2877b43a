package registrar

import (
	"context"
	"errors"
	"hash/maphash"
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
	// MaxPerAOR bounds the bindings of one AOR (on every hub sharing
	// Store); a REGISTER that would go beyond it gets 503 + Retry-After and
	// changes nothing. Default DefaultMaxPerAOR.
	MaxPerAOR int
	// LimitHit is told when MaxPerAOR refuses a REGISTER (metrics); may be nil.
	LimitHit func(limit string)
	// Store holds the bindings; nil: NewMemory(). Hubs sharing a Store
	// each answer REGISTER with every hub's bindings.
	Store Store
	// Node names this hub among those sharing Store: its bindings carry it,
	// and only its own are removed when one of its flows closes.
	Node string
}

// DefaultMaxPerAOR is Config.MaxPerAOR's default: far above the devices of
// one user (RFC 5626 gives each its own binding), far below what makes the
// 200, which lists every binding, costly.
const DefaultMaxPerAOR = 100

// saveAttempts bounds the compare-and-swap retries of one REGISTER.
const saveAttempts = 8

// Binding is one registered contact.
type Binding struct {
	AOR      string
	Contact  sip.ContactHeader
	Instance string // +sip.instance, with its quotes
	RegID    string
	FlowID   uint64 // on Node
	Node     string // the hub whose socket holds it
	Expires  time.Time
	CallID   string
}

func (b *Binding) key() string {
	if b.Instance != "" {
		return "i:" + b.Instance + ";" + b.RegID
	}
	return "u:" + b.Contact.Address.String()
}

// Registrar answers REGISTER from its Store and keeps an index of this
// hub's own bindings, which belong to its live connections.
type Registrar struct {
	cfg   Config
	seed  maphash.Seed
	locks [64]sync.Mutex // per AOR (hashed): one Load–Save at a time on this hub

	mu     sync.Mutex
	local  map[string][]Binding           // this hub's bindings per AOR, as last seen in the store
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
	if cfg.Store == nil {
		cfg.Store = NewMemory()
	}
	return &Registrar{cfg: cfg, seed: maphash.MakeSeed(), local: make(map[string][]Binding), byFlow: make(map[uint64]map[string]struct{})}
}

func (r *Registrar) lock(aor string) *sync.Mutex {
	return &r.locks[maphash.String(r.seed, aor)%uint64(len(r.locks))]
}

// Register processes a REGISTER for aor (already authorized) arriving on
// flowID and returns the response to send (RFC 3261 §10.3 steps 6–8): the
// 200 lists every current binding of aor, those other hubs sharing the
// Store hold included.
func (r *Registrar) Register(ctx context.Context, req *sip.Request, aor string, flowID uint64) *sip.Response {
	defExp, err := siprule.Expires(req)
	if err != nil {
		return sip.NewResponseFromRequest(req, 400, "Bad Request - invalid Expires", nil)
	}
	contacts := req.GetHeaders("Contact")
	now := r.cfg.Now()

	wildcard := false
	var adds []Binding
	var dels []string
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
			wildcard = true
			break
		}
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
		b := Binding{AOR: aor, Contact: *c.Clone(), FlowID: flowID, Node: r.cfg.Node, CallID: req.CallID().Value()}
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

	mu := r.lock(aor)
	mu.Lock()
	defer mu.Unlock()
	for attempt := range saveAttempts {
		if attempt > 0 && !backOff(ctx, attempt) {
			break
		}
		list, rev, err := r.cfg.Store.Load(ctx, aor)
		if err != nil {
			return unavailable(req)
		}
		list = r.live(list, now)
		if len(contacts) == 0 {
			r.setLocal(aor, list, 0)
			return r.answer(req, list, now)
		}
		if wildcard {
			list = nil
		} else {
			for _, k := range dels {
				list = without(list, k)
			}
			for _, b := range adds {
				list = append(without(list, b.key()), b)
			}
			if len(list) > r.cfg.MaxPerAOR {
				r.cfg.LimitHit("bindings_per_aor")
				res := sip.NewResponseFromRequest(req, 503, "Service Unavailable - too many bindings for this AOR", nil)
				res.AppendHeader(sip.NewHeader("Retry-After", "60"))
				return res
			}
		}
		if len(list) == 0 && rev == 0 {
			err = nil // nothing stored, nothing to remove
		} else {
			err = r.cfg.Store.Save(ctx, aor, list, rev, r.keep(list, now))
		}
		if errors.Is(err, ErrConflict) {
			continue
		}
		if err != nil {
			return unavailable(req)
		}
		var fl uint64
		if len(adds) > 0 && !wildcard {
			fl = flowID
		}
		r.setLocal(aor, list, fl)
		return r.answer(req, list, now)
	}
	return unavailable(req)
}

// backOff waits a little before another compare-and-swap attempt (a
// replica answering reads may lag the write that beat this one by a few
// milliseconds); false when ctx ended.
func backOff(ctx context.Context, attempt int) bool {
	t := time.NewTimer(time.Duration(attempt) * 5 * time.Millisecond)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

func unavailable(req *sip.Request) *sip.Response {
	res := sip.NewResponseFromRequest(req, 503, "Service Unavailable - registrations store unavailable", nil)
	res.AppendHeader(sip.NewHeader("Retry-After", "5"))
	return res
}

// without returns list less the binding with key k.
func without(list []Binding, k string) []Binding {
	for i := range list {
		if list[i].key() == k {
			return append(list[:i:i], list[i+1:]...)
		}
	}
	return list
}

// live drops the bindings whose expiry plus grace has passed.
func (r *Registrar) live(list []Binding, now time.Time) []Binding {
	kept := list[:0]
	for _, b := range list {
		if now.Before(b.Expires.Add(r.cfg.Grace)) {
			kept = append(kept, b)
		}
	}
	return kept
}

// keep is how long a record of list must live: to its last expiry plus
// grace.
func (r *Registrar) keep(list []Binding, now time.Time) time.Duration {
	var last time.Time
	for _, b := range list {
		if b.Expires.After(last) {
			last = b.Expires
		}
	}
	return max(last.Add(r.cfg.Grace).Sub(now), time.Second)
}

// setLocal records this hub's share of aor's bindings as the store holds
// them; flowID, when not 0, now holds bindings of aor.
func (r *Registrar) setLocal(aor string, list []Binding, flowID uint64) {
	own := list // read-only from here on: shared with the store
	for i, b := range list {
		if b.Node != r.cfg.Node {
			own = append([]Binding(nil), list[:i]...)
			for _, b := range list[i+1:] {
				if b.Node == r.cfg.Node {
					own = append(own, b)
				}
			}
			break
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(own) == 0 {
		delete(r.local, aor)
	} else {
		r.local[aor] = own
	}
	if flowID != 0 {
		m := r.byFlow[flowID]
		if m == nil {
			m = make(map[string]struct{})
			r.byFlow[flowID] = m
		}
		m[aor] = struct{}{}
	}
}

// answer lists the bindings, each Contact with its remaining expires.
func (r *Registrar) answer(req *sip.Request, list []Binding, now time.Time) *sip.Response {
	res := sip.NewResponseFromRequest(req, 200, "OK", nil)
	maxLeft := 0
	for _, b := range list {
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
	if len(list) > 0 {
		res.AppendHeader(sip.NewHeader("Expires", strconv.Itoa(maxLeft)))
	}
	return res
}

// DropFlow removes every binding made over a closed flow of this hub and
// returns the AORs whose bindings on this hub changed. When the store
// cannot be reached the bindings are dropped here and left to expire
// there.
func (r *Registrar) DropFlow(ctx context.Context, flowID uint64) []string {
	r.mu.Lock()
	aorSet := r.byFlow[flowID]
	delete(r.byFlow, flowID)
	r.mu.Unlock()
	var aors []string
	for aor := range aorSet {
		if r.dropFlowOf(ctx, aor, flowID) {
			aors = append(aors, aor)
		}
	}
	sort.Strings(aors)
	return aors
}

func (r *Registrar) dropFlowOf(ctx context.Context, aor string, flowID uint64) bool {
	mine := func(b Binding) bool { return b.Node == r.cfg.Node && b.FlowID == flowID }
	mu := r.lock(aor)
	mu.Lock()
	defer mu.Unlock()
	r.mu.Lock()
	before := r.local[aor]
	var own []Binding
	for _, b := range before {
		if !mine(b) {
			own = append(own, b)
		}
	}
	if len(own) == 0 {
		delete(r.local, aor)
	} else {
		r.local[aor] = own
	}
	r.mu.Unlock()
	for range saveAttempts {
		list, rev, err := r.cfg.Store.Load(ctx, aor)
		if err != nil {
			break
		}
		kept := make([]Binding, 0, len(list))
		for _, b := range list {
			if !mine(b) {
				kept = append(kept, b)
			}
		}
		if len(kept) == len(list) {
			break
		}
		now := r.cfg.Now()
		kept = r.live(kept, now)
		if err := r.cfg.Store.Save(ctx, aor, kept, rev, r.keep(kept, now)); !errors.Is(err, ErrConflict) {
			break
		}
	}
	return len(own) < len(before)
}

// Bindings returns copies of this hub's live bindings of aor ("" for
// all), sorted by AOR. Other hubs' bindings are in the REGISTER 200.
func (r *Registrar) Bindings(aor string) []Binding {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.cfg.Now()
	var out []Binding
	for a, list := range r.local {
		if aor != "" && a != aor {
			continue
		}
		for _, b := range list {
			if now.Before(b.Expires.Add(r.cfg.Grace)) {
				out = append(out, b)
			}
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].AOR < out[j].AOR })
	return out
}

// Count is the number of this hub's bindings (metrics).
func (r *Registrar) Count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, l := range r.local {
		n += len(l)
	}
	return n
}

package server_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/presencehub/presencehub/internal/sipclient"
	"github.com/presencehub/presencehub/internal/siprule"
	"github.com/presencehub/presencehub/server"
	"github.com/presencehub/presencehub/server/registrar/natsreg"
	"github.com/presencehub/presencehub/server/servertest"
)

// phone is a client that registers 1001 with its own Contact.
type phone struct {
	t       *testing.T
	c       *sipclient.Client
	contact string // the user part of its Contact URI, unique per phone
}

func newPhone(t *testing.T, hub *servertest.Hub) *phone {
	t.Helper()
	c := hub.Dial(testCtx(t), "1001", sipclient.Options{})
	req := newReq(t, c, sip.REGISTER, "1001", "1001")
	return &phone{t: t, c: c, contact: req.Contact().Address.User}
}

// register sends REGISTER with this phone's Contact and expires; it
// returns the response and the Contact users its 200 lists.
func (p *phone) register(expires string) (*sip.Response, []string) {
	p.t.Helper()
	req := newReq(p.t, p.c, sip.REGISTER, "1001", "1001", "Expires", expires)
	req.Contact().Address.User = p.contact
	return p.send(req)
}

// query sends REGISTER without a Contact (RFC 3261 §10.2.3).
func (p *phone) query() []string {
	p.t.Helper()
	req := newReq(p.t, p.c, sip.REGISTER, "1001", "1001")
	req.RemoveHeader("Contact")
	res, users := p.send(req)
	if res.StatusCode != 200 {
		p.t.Fatalf("REGISTER query: %d %s", res.StatusCode, res.Reason)
	}
	return users
}

// unregisterAll sends Contact: * with Expires: 0 (RFC 3261 §10.2.2).
func (p *phone) unregisterAll() []string {
	p.t.Helper()
	req := newReq(p.t, p.c, sip.REGISTER, "1001", "1001", "Expires", "0")
	req.RemoveHeader("Contact")
	req.AppendHeader(&sip.ContactHeader{Address: sip.Uri{Wildcard: true}})
	res, users := p.send(req)
	if res.StatusCode != 200 {
		p.t.Fatalf("REGISTER Contact: *: %d %s", res.StatusCode, res.Reason)
	}
	return users
}

func (p *phone) send(req *sip.Request) (*sip.Response, []string) {
	res := do(p.t, p.c, req)
	var users []string
	for _, h := range res.GetHeaders("Contact") {
		if c, ok := h.(*sip.ContactHeader); ok {
			users = append(users, c.Address.User)
		}
	}
	return res, users
}

func sameSet(got []string, want ...string) bool {
	if len(got) != len(want) {
		return false
	}
	seen := map[string]bool{}
	for _, g := range got {
		seen[g] = true
	}
	for _, w := range want {
		if !seen[w] {
			return false
		}
	}
	return true
}

// RFC 3261 §10.3: the 200 lists every current binding of the AOR, whichever
// hub's socket holds it; Contact: * on one hub removes those of all hubs.
func TestMultiHub_Register_200ListsBindingsOfEveryHub(t *testing.T) {
	c := newCluster(t)
	a := c.hub("a", 0, nil)
	b := c.hub("b", 1, nil)
	pa, pb := newPhone(t, a), newPhone(t, b)

	if res, users := pa.register("300"); res.StatusCode != 200 || !sameSet(users, pa.contact) {
		t.Fatalf("REGISTER on A: %d, contacts %v", res.StatusCode, users)
	}
	if res, users := pb.register("300"); res.StatusCode != 200 || !sameSet(users, pa.contact, pb.contact) {
		t.Fatalf("REGISTER on B: %d, contacts %v; want A's and B's", res.StatusCode, users)
	}
	res, users := pa.register("300")
	if res.StatusCode != 200 || !sameSet(users, pa.contact, pb.contact) {
		t.Fatalf("refresh on A: %d, contacts %v; want A's and B's", res.StatusCode, users)
	}
	if !strings.Contains(header(res, "Contact"), "expires=300") {
		t.Errorf("Contacts of the 200 on A lack their expires: %s", header(res, "Contact"))
	}
	// Registration presence stays each hub's own (per node id).
	if n := len(a.Server.Registrar().Bindings(servertest.AOR("1001"))); n != 1 {
		t.Errorf("hub A's own bindings = %d, want 1", n)
	}

	if users := pb.unregisterAll(); len(users) != 0 {
		t.Fatalf("Contact: * on B left %v", users)
	}
	if users := pa.query(); len(users) != 0 {
		t.Fatalf("after Contact: * on B, A lists %v", users)
	}
}

// A hub that stops removes its bindings as their sockets close; one that
// dies (cut off from NATS, then stopped) leaves them to expire: gone for the
// other hubs after their expiry plus grace, and the record with them.
func TestMultiHub_Register_StoppedHubsBindingsVanish(t *testing.T) {
	c := newCluster(t)
	short := func(cfg *server.Config) {
		cfg.Register.Expiry = siprule.ExpiryPolicy{Min: time.Second}
		cfg.Register.Grace = time.Second
	}
	a := c.hub("a", 0, short)
	b := c.hub("b", 1, short)
	a2 := c.hub("a2", 2, short)
	pb := newPhone(t, b)

	// A clean stop.
	pa := newPhone(t, a)
	if res, users := pa.register("300"); res.StatusCode != 200 || len(users) != 1 {
		t.Fatalf("REGISTER on A: %d %v", res.StatusCode, users)
	}
	a.Close()
	waitUntil(t, 5*time.Second, "a stopped hub's binding is removed", func() bool { return len(pb.query()) == 0 })

	// A crash: the binding outlives the hub, up to its expiry plus grace.
	pc := newPhone(t, a2)
	if res, users := pc.register("3"); res.StatusCode != 200 || !sameSet(users, pc.contact) {
		t.Fatalf("REGISTER on A2: %d %v", res.StatusCode, users)
	}
	c.conns["a2"].Close()
	a2.Close()
	if users := pb.query(); !sameSet(users, pc.contact) {
		t.Fatalf("right after the crash B lists %v, want the crashed hub's binding", users)
	}
	waitUntil(t, 10*time.Second, "a crashed hub's binding expires", func() bool { return len(pb.query()) == 0 })
	st, err := natsreg.Open(testCtx(t), natsreg.Options{Conn: c.conns["b"], Bucket: "hub_registrations"})
	if err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 10*time.Second, "the record of the expired binding leaves the bucket (its TTL)", func() bool {
		bs, _, err := st.Load(testCtx(t), servertest.AOR("1001"))
		return err == nil && len(bs) == 0
	})
}

// The bound on bindings per AOR counts every hub's: a REGISTER beyond it
// is 503 on any hub, a refresh of an existing binding is not.
func TestMultiHub_Register_BoundHoldsAcrossHubs(t *testing.T) {
	c := newCluster(t)
	two := func(cfg *server.Config) { cfg.Register.MaxPerAOR = 2 }
	a := c.hub("a", 0, two)
	b := c.hub("b", 1, two)
	pa, pb := newPhone(t, a), newPhone(t, b)
	for _, p := range []*phone{pa, pb} {
		if res, _ := p.register("300"); res.StatusCode != 200 {
			t.Fatalf("REGISTER: %d %s", res.StatusCode, res.Reason)
		}
	}
	for name, hub := range map[string]*servertest.Hub{"A": a, "B": b} {
		res, _ := newPhone(t, hub).register("300")
		if res.StatusCode != 503 || !strings.Contains(res.Reason, "too many bindings") || res.GetHeader("Retry-After") == nil {
			t.Errorf("a third binding on %s: %d %s, want 503 too many bindings with Retry-After", name, res.StatusCode, res.Reason)
		}
	}
	if res, users := pb.register("300"); res.StatusCode != 200 || !sameSet(users, pa.contact, pb.contact) {
		t.Errorf("refresh at the bound: %d %v", res.StatusCode, users)
	}
}

func waitUntil(t *testing.T, d time.Duration, what string, ok func() bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	for !ok() {
		select {
		case <-ctx.Done():
			t.Fatalf("not within %v: %s", d, what)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// REGISTERs racing on two hubs for one AOR: the compare-and-swap lets
// exactly as many through as the bound allows, the rest are 503, and the
// 200s and the stored list agree.
func TestMultiHub_Register_ConcurrentRegistersOnTwoHubs_StopAtTheBound(t *testing.T) {
	c := newCluster(t)
	three := func(cfg *server.Config) { cfg.Register.MaxPerAOR = 3 }
	hubs := []*servertest.Hub{c.hub("a", 0, three), c.hub("b", 1, three)}
	phones := make([]*phone, 8)
	for i := range phones {
		phones[i] = newPhone(t, hubs[i%2])
	}
	codes := make(chan int, len(phones))
	var wg sync.WaitGroup
	for _, p := range phones {
		wg.Go(func() {
			req := newReq(t, p.c, sip.REGISTER, "1001", "1001", "Expires", "300")
			req.Contact().Address.User = p.contact
			res, err := p.c.Do(testCtx(t), req)
			if err != nil {
				t.Error(err)
				return
			}
			if res.StatusCode == 503 && !strings.Contains(res.Reason, "too many bindings") {
				t.Errorf("503 for another cause: %s", res.Reason)
			}
			codes <- res.StatusCode
		})
	}
	wg.Wait()
	close(codes)
	ok := 0
	for code := range codes {
		switch code {
		case 200:
			ok++
		case 503:
		default:
			t.Errorf("REGISTER answered %d", code)
		}
	}
	if ok != 3 {
		t.Errorf("%d REGISTERs accepted, want 3 (the bound)", ok)
	}
	if users := phones[0].query(); len(users) != ok {
		t.Errorf("the AOR lists %d bindings after %d accepted REGISTERs", len(users), ok)
	}
}

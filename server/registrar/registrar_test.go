package registrar_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/presencehub/presencehub/server/registrar"
)

func register(t *testing.T, contact, expires string) *sip.Request {
	t.Helper()
	raw := "REGISTER sip:hub.test SIP/2.0\r\nVia: SIP/2.0/WS x.invalid;branch=z9hG4bK1\r\nFrom: <sip:1001@hub.test>;tag=a\r\n" +
		"To: <sip:1001@hub.test>\r\nCall-ID: c1\r\nCSeq: 1 REGISTER\r\n"
	if contact != "" {
		raw += "Contact: " + contact + "\r\n"
	}
	if expires != "" {
		raw += "Expires: " + expires + "\r\n"
	}
	msg, err := sip.ParseMessage([]byte(raw + "Content-Length: 0\r\n\r\n"))
	if err != nil {
		t.Fatal(err)
	}
	return msg.(*sip.Request)
}

// SIP.js refreshes at 99 % of the grant: a binding lives a grace period
// past its expiry, then goes.
func TestBinding_GracePastExpiry(t *testing.T) {
	now := time.Unix(1000, 0)
	r := registrar.New(registrar.Config{Grace: 30 * time.Second, Now: func() time.Time { return now }})
	res := r.Register(context.Background(), register(t, `<sip:a@b.invalid;transport=ws>;+sip.instance="<urn:uuid:1>";reg-id=1`, "60"), "sip:1001@hub.test", 1)
	if res.StatusCode != 200 || !strings.Contains(res.GetHeader("Contact").Value(), `+sip.instance="<urn:uuid:1>"`) {
		t.Fatalf("REGISTER: %d %v", res.StatusCode, res.GetHeader("Contact"))
	}
	for _, tt := range []struct {
		after time.Duration
		want  int
	}{{59 * time.Second, 1}, {80 * time.Second, 1}, {91 * time.Second, 0}} {
		now = time.Unix(1000, 0).Add(tt.after)
		if got := len(r.Bindings("sip:1001@hub.test")); got != tt.want {
			t.Errorf("after %v: %d bindings, want %d", tt.after, got, tt.want)
		}
	}
}

// The same instance re-registering replaces its binding; DropFlow removes
// what a closed socket held.
func TestBinding_InstanceReplacesAndFlowDrops(t *testing.T) {
	r := registrar.New(registrar.Config{})
	c := `<sip:a@b.invalid;transport=ws>;+sip.instance="<urn:uuid:1>";reg-id=1`
	r.Register(context.Background(), register(t, c, "300"), "sip:1001@hub.test", 1)
	r.Register(context.Background(), register(t, strings.Replace(c, "sip:a@", "sip:z@", 1), "300"), "sip:1001@hub.test", 2)
	if n := r.Count(); n != 1 {
		t.Fatalf("bindings = %d, want 1 (same instance)", n)
	}
	if aors := r.DropFlow(context.Background(), 1); len(aors) != 0 {
		t.Errorf("flow 1 no longer holds a binding, got %v", aors)
	}
	if aors := r.DropFlow(context.Background(), 2); len(aors) != 1 || r.Count() != 0 {
		t.Errorf("DropFlow(2) = %v, count %d", aors, r.Count())
	}
}

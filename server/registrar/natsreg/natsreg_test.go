package natsreg_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/nats-io/nats.go"
	"go.uber.org/goleak"

	"github.com/presencehub/presencehub/internal/natstest"
	"github.com/presencehub/presencehub/server/registrar"
	"github.com/presencehub/presencehub/server/registrar/natsreg"
)

// Every goroutine has an owner and an end: none may outlive the tests.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func binding(t *testing.T, aor, contact, node string, expires time.Time) registrar.Binding {
	t.Helper()
	b := registrar.Binding{AOR: aor, Node: node, FlowID: 7, Expires: expires, CallID: "c1", Instance: `"<urn:uuid:1>"`, RegID: "1"}
	name, err := sip.ParseAddressValue(contact, &b.Contact.Address, &b.Contact.Params)
	if err != nil {
		t.Fatal(err)
	}
	b.Contact.DisplayName = name
	return b
}

// One record per AOR on a real three-server cluster: what is saved loads
// back, a save on a stale revision is a conflict, an empty list removes the
// record, and a record not saved again is gone after its TTL.
func TestStore_CompareAndSwapAndTTL(t *testing.T) {
	c := natstest.Start(t, 3)
	nc, err := nats.Connect(c.URL(), nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := natsreg.Open(ctx, natsreg.Options{Conn: nc, Bucket: "reg", Replicas: 3})
	if err != nil {
		t.Fatal(err)
	}
	const aor = "sip:1001@hub.test"
	exp := time.Now().Add(time.Minute).Truncate(time.Second)
	contact := `"Desk" <sip:a@b.invalid;transport=ws>;+sip.instance="<urn:uuid:1>";reg-id=1`

	if bs, rev, err := st.Load(ctx, aor); err != nil || len(bs) != 0 || rev != 0 {
		t.Fatalf("Load of nothing = %v, %d, %v", bs, rev, err)
	}
	if err := st.Save(ctx, aor, []registrar.Binding{binding(t, aor, contact, "a", exp)}, 0, time.Minute); err != nil {
		t.Fatalf("Save: %v", err)
	}
	bs, rev, err := st.Load(ctx, aor)
	if err != nil || len(bs) != 1 || rev == 0 {
		t.Fatalf("Load = %v, %d, %v", bs, rev, err)
	}
	got := bs[0]
	if got.Contact.Value() != contact || got.Node != "a" || got.FlowID != 7 || !got.Expires.Equal(exp) || got.Instance != `"<urn:uuid:1>"` || got.RegID != "1" || got.AOR != aor {
		t.Errorf("loaded %+v (contact %q)", got, got.Contact.Value())
	}
	if err := st.Save(ctx, aor, nil, 0, 0); !errors.Is(err, registrar.ErrConflict) {
		t.Errorf("Save on revision 0 over a record: %v, want ErrConflict", err)
	}
	if err := st.Save(ctx, aor, nil, rev, 0); err != nil {
		t.Fatalf("Save of nothing: %v", err)
	}
	bs, rev, err = st.Load(ctx, aor)
	if err != nil || len(bs) != 0 {
		t.Fatalf("Load after removal = %v, %v", bs, err)
	}
	if err := st.Save(ctx, aor, []registrar.Binding{binding(t, aor, contact, "a", exp)}, rev, time.Second); err != nil {
		t.Fatalf("Save after removal: %v", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		bs, _, err := st.Load(ctx, aor)
		if err != nil {
			t.Fatal(err)
		}
		if len(bs) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("a record with a TTL of 1 s still loads after 10 s")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

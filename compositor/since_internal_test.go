package compositor

import (
	"context"
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/presencehub/presencehub/compositor/store/memstore"
	"github.com/presencehub/presencehub/compositor/store/storetest"
)

// The stamps go through the store as bytes: what encode writes, decodeMeta
// reads back, whether the fast form or encoding/json writes it.
func TestMeta_SinceRoundTrips(t *testing.T) {
	for _, m := range []meta{
		{Since: stamps{{"d1", 1764751215334}}},
		{Since: stamps{{"a", 1}, {"b", 2}, {"c-3;x", 3}}},
		{Since: stamps{{`q"uote\back`, 5}, {"ü<&>", 6}}},
		{Since: stamps{{"x", 7}}, Tombs: tombs{"y": 8}, Ignored: []string{"z"}},
		{Tombs: tombs{"b": 9, "a": 8, "c": -1}, Ignored: []string{"z", "y"}},
		{Tombs: tombs{"a<": 8}, Since: stamps{{"x", 7}}},
		{Ignored: []string{"q\"x"}},
	} {
		if got := decodeMeta(m.encode()); !reflect.DeepEqual(got, m) {
			t.Errorf("%s decodes to %+v, want %+v", m.encode(), got, m)
		}
	}
}

// Two hubs on one store: the stamp written by the first is the one the
// second serves, and the second keeps it when it takes a modify that does
// not change the state.
func TestSince_SharedBetweenHubsThroughTheStore(t *testing.T) {
	clk := storetest.NewClock(time.Date(2030, 5, 6, 7, 8, 9, 0, time.UTC))
	st := memstore.New(memstore.Options{Now: clk.Now})
	ctx := context.Background()
	var hubs [2]*Compositor
	for i := range hubs {
		c, err := New(ctx, Config{Store: st, Now: clk.Now})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		hubs[i] = c
	}
	body := []byte(`<dialog-info xmlns="urn:ietf:params:xml:ns:dialog-info" version="0" state="full" entity="` + res +
		`"><dialog id="x"><state>confirmed</state><remote><identity>sip:2001@hub.test</identity></remote></dialog></dialog-info>`)
	t0 := clk.Now()
	out, err := hubs[0].Publish(ctx, PublishRequest{Resource: res, Event: EventDialog, Expires: 600,
		ContentType: ContentTypeDialogInfo, Body: body, Publisher: "desk"})
	if err != nil {
		t.Fatal(err)
	}
	waitSince := func(c *Compositor, want time.Time) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for {
			v := c.View(res, EventDialog)
			if len(v.Dialogs) == 1 && v.Dialogs[0].Since.Equal(want) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("view %+v, want x since %v", v.Dialogs, want)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	waitSince(hubs[1], t0)
	clk.Advance(5 * time.Second)
	if _, err := hubs[1].Publish(ctx, PublishRequest{Resource: res, Event: EventDialog, Expires: 600, IfMatch: []string{out.ETag},
		ContentType: ContentTypeDialogInfo, Body: body, Publisher: "desk"}); err != nil {
		t.Fatal(err)
	}
	waitSince(hubs[1], t0)
	waitSince(hubs[0], t0)
}

// The bookkeeping's own encoder writes what encoding/json writes for the
// struct, byte for byte: stores hold both forms, old hubs read either.
func TestMeta_EncodesAsEncodingJSON(t *testing.T) {
	for _, m := range []meta{
		{Since: stamps{{"d1", 1764751215334}}},
		{Since: stamps{{"a", 1}, {"b", 2}, {"c-3;x", 3}}},
		{Tombs: tombs{"b": 9, "a": 8, "c": 1}, Ignored: []string{"z", "y"}, Since: stamps{{"x", 7}}},
		{Tombs: tombs{"only": 1764751215334}},
		{Ignored: []string{"i"}},
		{Tombs: tombs{"é": 1}, Since: stamps{{"x", 7}}},
	} {
		want, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		if got := m.encode(); string(got) != string(want) {
			t.Errorf("encode = %s, encoding/json = %s", got, want)
		}
	}
}

// FuzzDecodeMeta_MatchesEncodingJSON: what the fast reader accepts,
// encoding/json reads to the same bookkeeping.
func FuzzDecodeMeta_MatchesEncodingJSON(f *testing.F) {
	for _, s := range []string{`{"s":{"d1":1764751215334}}`, `{"t":{"a":1,"b":2},"i":["x"],"s":{"c":3}}`, `{"i":[]}`,
		`{"t":{"a":01}}`, `{"s":{"b":1,"a":2}}`, `{"s":{"a":1,"a":2}}`, `{"t":{"a":-5}}`, `{}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		got, ok := decodeFast(b)
		if !ok {
			return
		}
		var want meta
		if err := json.Unmarshal(b, &want); err != nil {
			t.Fatalf("the fast reader took %q, encoding/json refuses it: %v", b, err)
		}
		if !reflect.DeepEqual(got.emptyAsNil(), want.emptyAsNil()) {
			t.Fatalf("%q: fast %+v, encoding/json %+v", b, got, want)
		}
	})
}

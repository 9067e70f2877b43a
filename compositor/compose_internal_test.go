package compositor

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/presencehub/presencehub/compositor/dialoginfo"
	"github.com/presencehub/presencehub/compositor/store/memstore"
	"github.com/presencehub/presencehub/compositor/store/storetest"
)

const res = "sip:1001@hub.test"

func randomDialogBody(r *rand.Rand) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, `<dialog-info xmlns="urn:ietf:params:xml:ns:dialog-info" version="0" state="full" entity="%s">`, res)
	states := []string{dialoginfo.Trying, dialoginfo.Early, dialoginfo.Confirmed, dialoginfo.Terminated}
	for _, id := range []string{"a", "b", "c", "d", "e", "f"} {
		if r.IntN(3) == 0 {
			fmt.Fprintf(&b, `<dialog id="%s"><state>%s</state><local><target uri="sip:x@y;n=%d"/></local></dialog>`, id, states[r.IntN(len(states))], r.IntN(5))
		}
	}
	b.WriteString(`</dialog-info>`)
	return []byte(b.String())
}

// wholeView composes the resource from scratch, as every change did before
// composition became incremental.
func wholeView(c *Compositor, k key, now time.Time) (got, want []dialoginfo.Dialog) {
	c.cache.mu.Lock()
	defer c.cache.mu.Unlock()
	rs := c.cache.res[k]
	if rs == nil {
		return nil, nil
	}
	scratch := &resState{pubs: rs.pubs, tombs: maps.Clone(rs.tombs)}
	if len(rs.pubs) > 0 {
		want = composeDialogs(c.cache.live(scratch, now), scratch, now)
	}
	return rs.view.Dialogs, want
}

func TestCompose_Incremental_SameAsWhole(t *testing.T) {
	for seed := range uint64(8) {
		t.Run(fmt.Sprint("seed=", seed), func(t *testing.T) {
			r := rand.New(rand.NewPCG(seed, 99))
			clk := storetest.NewClock(time.Date(2030, 5, 6, 7, 8, 9, 0, time.UTC))
			st := memstore.New(memstore.Options{Now: clk.Now})
			c, err := New(context.Background(), Config{Store: st, Now: clk.Now, TombstoneTTL: 4 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			ctx := context.Background()
			var tags []string
			k := key{res, EventDialog}
			for step := range 400 {
				req := PublishRequest{Resource: res, Event: EventDialog, Expires: 1 + r.IntN(8),
					ContentType: ContentTypeDialogInfo, Body: randomDialogBody(r), Publisher: "p"}
				op := r.IntN(6)
				i := -1
				if len(tags) > 0 {
					i = r.IntN(len(tags))
				}
				switch {
				case op == 0 || i < 0: // a new publication
				case op == 1: // refresh
					req.IfMatch, req.Body, req.ContentType = []string{tags[i]}, nil, ""
				case op == 2: // remove
					req.IfMatch, req.Expires, req.Body, req.ContentType = []string{tags[i]}, 0, nil, ""
				case op == 3:
					clk.Advance(time.Duration(r.IntN(3000)) * time.Millisecond)
					continue
				default: // modify
					req.IfMatch = []string{tags[i]}
				}
				out, err := c.Publish(ctx, req)
				var ce *Error
				switch {
				case errors.As(err, &ce) && ce.Code == 412: // expired meanwhile
					tags = append(tags[:i], tags[i+1:]...)
					continue
				case err != nil:
					t.Fatalf("step %d: %v", step, err)
				}
				if i >= 0 && len(req.IfMatch) > 0 {
					tags = append(tags[:i], tags[i+1:]...)
				}
				if req.Expires > 0 {
					tags = append(tags, out.ETag)
				}
				got, want := wholeView(c, k, clk.Now())
				if len(got) == 0 && len(want) == 0 {
					continue
				}
				if !reflect.DeepEqual(got, want) {
					t.Fatalf("step %d: incremental view\n%+v\nwhole view\n%+v", step, got, want)
				}
			}
		})
	}
}

func TestPublish_ResourceBounds_RefusedWithTheirLimit(t *testing.T) {
	clk := storetest.NewClock(time.Date(2030, 5, 6, 7, 8, 9, 0, time.UTC))
	c, err := New(context.Background(), Config{Store: memstore.New(memstore.Options{Now: clk.Now}), Now: clk.Now,
		MaxPublicationsPerResource: 2, MaxDialogsPerResource: 3})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	body := func(ids ...string) []byte {
		var b strings.Builder
		fmt.Fprintf(&b, `<dialog-info xmlns="urn:ietf:params:xml:ns:dialog-info" version="0" state="full" entity="%s">`, res)
		for _, id := range ids {
			fmt.Fprintf(&b, `<dialog id="%s"><state>early</state></dialog>`, id)
		}
		return append([]byte(b.String()), `</dialog-info>`...)
	}
	tags := map[string]string{}
	for _, step := range []struct {
		name    string
		pub     string // "" new publication; else the name of the one to modify
		dialogs []string
		code    int
		limit   string
	}{
		{"first publication, 2 dialogs", "", []string{"a", "b"}, 200, ""},
		{"second, 1 dialog (3 in all)", "", []string{"c"}, 200, ""},
		{"third publication", "", []string{"x"}, 503, "publications_per_resource"},
		{"second grows to 2 (4 in all)", "p2", []string{"c", "d"}, 413, "dialogs_per_resource"},
		{"second changes, same count", "p2", []string{"d"}, 200, ""},
		{"first shrinks", "p1", []string{"a"}, 200, ""},
		{"second grows to 2 (3 in all)", "p2", []string{"c", "d"}, 200, ""},
	} {
		r := PublishRequest{Resource: res, Event: EventDialog, Expires: 60, ContentType: ContentTypeDialogInfo, Body: body(step.dialogs...), Publisher: "p"}
		if step.pub != "" {
			r.IfMatch = []string{tags[step.pub]}
		}
		out, err := c.Publish(context.Background(), r)
		var ce *Error
		switch {
		case step.code == 200 && err != nil:
			t.Fatalf("%s: %v", step.name, err)
		case step.code != 200 && (!errors.As(err, &ce) || ce.Code != step.code || ce.Limit != step.limit):
			t.Fatalf("%s: got %v, want %d with limit %q", step.name, err, step.code, step.limit)
		case step.code == 200:
			name := step.pub
			if name == "" {
				name = fmt.Sprint("p", len(tags)+1)
			}
			tags[name] = out.ETag
		}
	}
	if n := len(c.View(res, EventDialog).Dialogs); n != 3 {
		t.Fatalf("view has %d dialogs, want 3", n)
	}
}

// A tombstone written by another node (in the meta of a publication that
// reaches this one through the store's feed) removes the dialog from the
// incrementally composed view, as a whole composition does.
func TestCompose_TombstoneFromAnotherNode_RemovesTheDialog(t *testing.T) {
	clk := storetest.NewClock(time.Date(2030, 5, 6, 7, 8, 9, 0, time.UTC))
	st := memstore.New(memstore.Options{Now: clk.Now})
	c, err := New(context.Background(), Config{Store: st, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	body := func(id string) []byte {
		return []byte(`<dialog-info xmlns="urn:ietf:params:xml:ns:dialog-info" version="0" state="full" entity="` + res +
			`"><dialog id="` + id + `"><state>confirmed</state></dialog></dialog-info>`)
	}
	if _, err := c.Publish(ctx, PublishRequest{Resource: res, Event: EventDialog, Expires: 600,
		ContentType: ContentTypeDialogInfo, Body: body("x"), Publisher: "desk"}); err != nil {
		t.Fatal(err)
	}
	if v := c.View(res, EventDialog); len(v.Dialogs) != 1 || v.Dialogs[0].ID != "x" {
		t.Fatalf("view %+v", v.Dialogs)
	}
	// Another node stores a publication of the same resource whose meta
	// says x ended there.
	now := clk.Now()
	m := meta{Tombs: tombs{"x": now.Add(time.Minute).UnixMilli()}}
	if _, err := st.Create(ctx, Publication{ID: newID(), Resource: res, Event: EventDialog, ETag: newETag(),
		Expires: now.Add(10 * time.Minute), Created: now, Updated: now.Add(time.Millisecond),
		ContentType: ContentTypeDialogInfo, Body: body("y"), Publisher: "mobile", Meta: m.encode()}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		v := c.View(res, EventDialog)
		if len(v.Dialogs) == 1 && v.Dialogs[0].ID == "y" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("view after the other node's tombstone: %+v, want only y", v.Dialogs)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if got, want := wholeView(c, key{res, EventDialog}, clk.Now()); !reflect.DeepEqual(got, want) {
		t.Fatalf("incremental %+v, whole %+v", got, want)
	}
}

package sqlitestore_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/presencehub/presencehub/compositor/store"
	"github.com/presencehub/presencehub/compositor/store/sqlitestore"
	"github.com/presencehub/presencehub/compositor/store/storetest"
)

// testdata/schema5.db was written by this store at schema version 5 (a
// WITHOUT ROWID table with a UNIQUE entity-tag index), with the clock at
// 2030-01-01T00:00Z: publications id-00 … id-09 of sip:1000@x … sip:1003@x
// (expiring after 1 … 10 h), id-10 (expiring after a minute), id-11
// replaced once (entity-tag etag-11b), id-12 created and deleted, and the
// list sip:team@x.
func TestOpen_SchemaVersion5File_KeepsEveryRowCountAndRevision(t *testing.T) {
	ctx := context.Background()
	src, err := os.ReadFile(filepath.Join("testdata", "schema5.db"))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "old.db")
	if err := os.WriteFile(path, src, 0o600); err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	clk := storetest.NewClock(t0.Add(2 * time.Minute)) // id-10 expired while down
	s, err := sqlitestore.Open(ctx, path, sqlitestore.Options{Now: clk.Now})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer s.Close()

	all, err := s.List(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, p := range all {
		ids = append(ids, p.ID)
	}
	slices.Sort(ids)
	want := []string{"id-00", "id-01", "id-02", "id-03", "id-04", "id-05", "id-06", "id-07", "id-08", "id-09", "id-11"}
	if !slices.Equal(ids, want) {
		t.Fatalf("publications after migration %v, want %v", ids, want)
	}
	for i := range 10 {
		res := fmt.Sprintf("sip:%d@x", 1000+i%4)
		p, err := s.FindByETag(ctx, res, fmt.Sprintf("etag-%02d", i))
		if err != nil {
			t.Fatalf("FindByETag %s etag-%02d: %v", res, i, err)
		}
		if p.ID != fmt.Sprintf("id-%02d", i) || string(p.Body) != fmt.Sprintf("<body n=%d/>", i) ||
			string(p.Meta) != fmt.Sprintf(`{"m":%d}`, i) || p.Publisher != fmt.Sprintf("pbx-%d", i%3) ||
			!p.Expires.Equal(t0.Add(time.Duration(1+i)*time.Hour)) || !p.Updated.Equal(t0.Add(time.Duration(i)*time.Second)) {
			t.Fatalf("publication %d after migration: %+v", i, p)
		}
	}
	if p, err := s.FindByETag(ctx, "sip:1001@x", "etag-11b"); err != nil || string(p.Body) != "<body n=11 replaced/>" {
		t.Fatalf("replaced publication: %+v, %v", p, err)
	}
	pubs, rev, err := s.ListAt(ctx, "sip:1001@x")
	if err != nil || len(pubs) != 4 || rev != 15 {
		t.Fatalf("ListAt sip:1001@x: %d publications at rev %d, %v; want 4 at 15 (the delete's revision)", len(pubs), rev, err)
	}
	c, err := s.Counts(ctx)
	if err != nil || c.Resources != 4 || c.Events["dialog"] != 6 || c.Events["presence"] != 5 {
		t.Fatalf("Counts %+v, %v; want 4 resources, 6 dialog, 5 presence", c, err)
	}
	if n, err := s.CountPublisher(ctx, "pbx-1"); err != nil || n != 4 {
		t.Fatalf("CountPublisher pbx-1 = %d, %v; want 4", n, err)
	}
	if l, err := s.GetList(ctx, "sip:team@x"); err != nil || !slices.Equal(l.Members, []string{"sip:1000@x", "sip:1001@x"}) {
		t.Fatalf("list after migration: %+v, %v", l, err)
	}
	// The triggers work on the new table: counts and revisions follow writes.
	p, err := s.Create(ctx, store.Publication{ID: "id-20", Resource: "sip:2000@x", Event: "presence", ETag: "etag-20",
		Expires: clk.Now().Add(time.Hour), Publisher: "pbx-1", ContentType: "application/pidf+xml"})
	if err != nil || p.Rev != 16 {
		t.Fatalf("Create after migration: rev %d, %v; want 16", p.Rev, err)
	}
	if c, _ := s.Counts(ctx); c.Resources != 5 || c.Events["presence"] != 6 {
		t.Fatalf("Counts after Create %+v", c)
	}
	if _, err := s.Create(ctx, store.Publication{ID: "id-21", Resource: "sip:1001@x", Event: "dialog", ETag: "etag-11b",
		Expires: clk.Now().Add(time.Hour)}); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("Create with an entity-tag in use by the resource: %v, want ErrConflict", err)
	}
}

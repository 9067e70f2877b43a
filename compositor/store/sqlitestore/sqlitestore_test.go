package sqlitestore_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/presencehub/presencehub/compositor/store"
	"github.com/presencehub/presencehub/compositor/store/sqlitestore"
	"github.com/presencehub/presencehub/compositor/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T, now func() time.Time) store.Store {
		s, err := sqlitestore.Open(context.Background(), filepath.Join(t.TempDir(), "esc.db"), sqlitestore.Options{Now: now})
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		return s
	})
}

func TestReopen_KeepsLiveRemovesExpiredKeepsRevisions(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "esc.db")
	clk := storetest.NewClock(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	s, err := sqlitestore.Open(ctx, path, sqlitestore.Options{Now: clk.Now})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	mk := func(id string, ttl time.Duration) store.Publication {
		p, err := s.Create(ctx, store.Publication{ID: id, Resource: "sip:a@x", Event: "presence", ETag: "e-" + id,
			Expires: clk.Now().Add(ttl), Created: clk.Now(), Updated: clk.Now(), ContentType: "application/pidf+xml", Body: []byte("b")})
		if err != nil {
			t.Fatalf("Create: %v", err)
		}
		return p
	}
	mk("short", time.Minute)
	long := mk("long", time.Hour)
	last := mk("last", time.Hour)
	if _, err := s.Delete(ctx, last.ID, last.Rev); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	clk.Advance(2 * time.Minute) // "short" expired while down
	s, err = sqlitestore.Open(ctx, path, sqlitestore.Options{Now: clk.Now})
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer s.Close()
	all, err := s.List(ctx, "")
	if err != nil || len(all) != 1 || all[0].ID != "long" {
		t.Fatalf("after reopen List = %+v, %v; want only long", all, err)
	}
	if _, err := s.FindByETag(ctx, "sip:a@x", long.ETag); err != nil {
		t.Fatalf("ETag lost across restart: %v", err)
	}
	// Revisions never go back, even though the newest row was deleted.
	p, err := s.Create(ctx, store.Publication{ID: "new", Resource: "sip:a@x", Event: "presence", ETag: "e-new",
		Expires: clk.Now().Add(time.Hour), ContentType: "application/pidf+xml"})
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	if p.Rev <= last.Rev+1 {
		t.Fatalf("rev after restart %d, want > %d", p.Rev, last.Rev+1)
	}
	// Still expired state is removed by the store, not by the reader.
	if _, err := s.Get(ctx, "short"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("expired row visible: %v", err)
	}
}

func TestOpen_BadSynchronous_Fails(t *testing.T) {
	_, err := sqlitestore.Open(context.Background(), filepath.Join(t.TempDir(), "x.db"), sqlitestore.Options{Synchronous: "OFF"})
	if err == nil {
		t.Fatal("Open with synchronous=OFF succeeded")
	}
}

// One store per database file: a second Open fails with ErrLocked naming
// the holder until the first is closed.
func TestOpen_SecondOpenOfOneFileIsRefusedUntilClose(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "esc.db")
	first, err := sqlitestore.Open(ctx, path, sqlitestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = sqlitestore.Open(ctx, path, sqlitestore.Options{})
	if !errors.Is(err, sqlitestore.ErrLocked) || !strings.Contains(err.Error(), fmt.Sprint("process ", os.Getpid())) {
		t.Fatalf("second Open: %v, want ErrLocked naming process %d", err, os.Getpid())
	}
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	again, err := sqlitestore.Open(ctx, path, sqlitestore.Options{})
	if err != nil {
		t.Fatalf("Open after Close: %v", err)
	}
	again.Close()
}

// An entity-tag has no index of its own (migration 6): the writes keep it
// unique within its resource, where FindByETag looks it up.
func TestETag_UniqueWithinItsResource(t *testing.T) {
	ctx := context.Background()
	s, err := sqlitestore.Open(ctx, filepath.Join(t.TempDir(), "e.db"), sqlitestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	exp := time.Now().Add(time.Hour)
	mk := func(id, res, etag string) store.Publication {
		return store.Publication{ID: id, Resource: res, Event: "dialog", ETag: etag, Expires: exp,
			ContentType: "application/dialog-info+xml", Body: []byte(id)}
	}
	a, err := s.Create(ctx, mk("a", "sip:1@x", "ea"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.Create(ctx, mk("b", "sip:1@x", "eb"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		do   func() error
		want error
	}{
		{"Create_TagOfAnotherPublicationOfTheResource_Conflict", func() error {
			_, err := s.Create(ctx, mk("c", "sip:1@x", "ea"))
			return err
		}, store.ErrConflict},
		{"Replace_TagOfAnotherPublicationOfTheResource_Conflict", func() error {
			_, err := s.Replace(ctx, mk("b", "sip:1@x", "ea"), b.Rev)
			return err
		}, store.ErrConflict},
		{"Replace_KeepingItsOwnTag_Succeeds", func() error {
			p, err := s.Replace(ctx, mk("a", "sip:1@x", "ea"), a.Rev)
			a = p
			return err
		}, nil},
		{"Create_TagOfAnotherResource_Succeeds", func() error {
			_, err := s.Create(ctx, mk("d", "sip:2@x", "eb"))
			return err
		}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.do(); !errors.Is(err, tc.want) || (tc.want == nil && err != nil) {
				t.Fatalf("err %v, want %v", err, tc.want)
			}
		})
	}
	for res, want := range map[string]string{"sip:1@x": "b", "sip:2@x": "d"} {
		if p, err := s.FindByETag(ctx, res, "eb"); err != nil || p.ID != want {
			t.Fatalf("FindByETag(%s, eb) = %q, %v; want %q", res, p.ID, err, want)
		}
	}
	if p, err := s.Get(ctx, "b"); err != nil || p.ETag != "eb" || p.Rev != b.Rev {
		t.Fatalf("b after the refused Replace: %+v, %v", p, err)
	}
}

package sqlitestore_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/presencehub/presencehub/compositor/store"
	"github.com/presencehub/presencehub/compositor/store/sqlitestore"
)

func benchStore(b *testing.B, n int) (*sqlitestore.Store, []store.Publication) {
	b.Helper()
	ctx := context.Background()
	s, err := sqlitestore.Open(ctx, filepath.Join(b.TempDir(), "bench.db"), sqlitestore.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	ps := make([]store.Publication, n)
	for i := range ps {
		p, err := s.Create(ctx, benchPub(fmt.Sprintf("p%d", i)))
		if err != nil {
			b.Fatal(err)
		}
		ps[i] = p
	}
	return s, ps
}

func benchPub(id string) store.Publication {
	now := time.Now()
	return store.Publication{ID: id, Resource: "sip:" + id + "@hub.test", Event: "presence", ETag: "e-" + id,
		Expires: now.Add(time.Hour), Created: now, Updated: now, ContentType: "application/pidf+xml",
		Body: []byte(`<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:a@b"><tuple id="t"><status><basic>open</basic></status></tuple></presence>`)}
}

func BenchmarkCreate(b *testing.B) {
	s, _ := benchStore(b, 0)
	ctx := context.Background()
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, err := s.Create(ctx, benchPub(fmt.Sprintf("n%d", i))); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkReplace(b *testing.B) {
	s, ps := benchStore(b, 1000)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		j := i % len(ps)
		p := ps[j]
		p.ETag = fmt.Sprintf("e%d", i)
		np, err := s.Replace(ctx, p, p.Rev)
		if err != nil {
			b.Fatal(err)
		}
		ps[j] = np
	}
}

func BenchmarkGet(b *testing.B) {
	s, ps := benchStore(b, 1000)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := s.Get(ctx, ps[i%len(ps)].ID); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkFindByETag(b *testing.B) {
	s, ps := benchStore(b, 1000)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		p := ps[i%len(ps)]
		if _, err := s.FindByETag(ctx, p.Resource, p.ETag); err != nil {
			b.Fatal(err)
		}
	}
}

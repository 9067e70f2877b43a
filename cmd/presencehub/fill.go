package main

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/presencehub/presencehub/compositor"
	"github.com/presencehub/presencehub/compositor/store"
	"github.com/presencehub/presencehub/compositor/store/sqlitestore"
	"github.com/presencehub/presencehub/internal/siprule"
)

// Fill: `presencehub bench -fill N` stores N publications (N/2 AORs, each
// with a dialog and a presence publication of about 450 bytes, like a PBX
// publishing every extension) through the store, then measures a hub
// started on that database (loadgen.RunStartup).

// fillUser is the user part of fill resource i.
func fillUser(i int) string { return "fill-" + strconv.Itoa(i) }

// fillDialogID is the dialog id stored for fill resource i: a probe's first
// NOTIFY must carry it.
func fillDialogID(i int) string { return "call-" + strconv.Itoa(i) }

var fillStates = [...]string{"confirmed", "early", "proceeding", "confirmed"}

// fillPublications returns the two publications of fill resource i.
func fillPublications(i int, domain string, now time.Time) [2]store.Publication {
	user := fillUser(i)
	aor := siprule.AOR(user, domain)
	remote := siprule.AOR(strconv.Itoa(200000+i%100000), domain)
	dialog := `<?xml version="1.0" encoding="UTF-8"?>` + "\n" +
		`<dialog-info xmlns="urn:ietf:params:xml:ns:dialog-info" version="0" state="full" entity="` + aor + `">` + "\n" +
		`<dialog id="` + fillDialogID(i) + `" call-id="` + randomHex(8) + `@pbx.` + domain + `" local-tag="` + randomHex(4) + `" remote-tag="` + randomHex(4) + `" direction="recipient">` +
		`<state>` + fillStates[i%len(fillStates)] + `</state>` +
		`<local><identity display="Extension ` + strconv.Itoa(i) + `">` + aor + `</identity></local>` +
		`<remote><identity display="Caller">` + remote + `</identity><target uri="` + remote + `"/></remote>` +
		"</dialog>\n</dialog-info>\n"
	presence := `<?xml version="1.0" encoding="UTF-8"?>` + "\n" +
		`<presence xmlns="urn:ietf:params:xml:ns:pidf" xmlns:dm="urn:ietf:params:xml:ns:pidf:data-model" entity="` + aor + `">` + "\n" +
		`<tuple id="t` + randomHex(4) + `"><status><basic>open</basic></status><contact priority="0.8">` + aor + `</contact>` +
		`<note>Available</note><timestamp>` + now.UTC().Format(time.RFC3339) + `</timestamp></tuple>` + "\n" +
		`<dm:person id="p` + randomHex(4) + `"><dm:note>At the desk, extension ` + strconv.Itoa(i) + `</dm:note></dm:person>` + "\n</presence>\n"
	exp := now.Add(24 * time.Hour)
	pub := func(event, ctype, body string) store.Publication {
		return store.Publication{ID: randomHex(12), Resource: aor, Event: event, ETag: randomHex(12), Expires: exp,
			Created: now, Updated: now, ContentType: ctype, Body: []byte(body), Publisher: user}
	}
	return [2]store.Publication{
		pub(compositor.EventDialog, compositor.ContentTypeDialogInfo, dialog),
		pub(compositor.EventPresence, compositor.ContentTypePIDF, presence),
	}
}

// fillDB makes the SQLite database at path hold n fill publications
// (counting those already there from an earlier fill of the same path), and
// returns how many it wrote.
func fillDB(ctx context.Context, path, domain string, n int, progress io.Writer) (int, error) {
	st, err := sqlitestore.Open(ctx, path, sqlitestore.Options{})
	if err != nil {
		return 0, err
	}
	defer st.Close()
	// Resources already complete: a previous fill stored both publications
	// of fill-0 … fill-(have-1) (in order, 64 at a time; a few may be
	// stored again when that fill was interrupted).
	have := 0
	for step := 1 << 20; step > 0; step >>= 1 {
		if ps, err := st.List(ctx, siprule.AOR(fillUser(have+step-1), domain)); err == nil && len(ps) == 2 {
			have += step
		}
	}
	want := (n + 1) / 2
	if have >= want {
		return 0, nil
	}
	now := time.Now()
	var next atomic.Int64
	next.Store(int64(have))
	var wrote atomic.Int64
	var firstErr error
	var once sync.Once
	var wg sync.WaitGroup
	t0 := time.Now()
	for range 64 { // concurrent writers share group commits
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= want || ctx.Err() != nil {
					return
				}
				for _, p := range fillPublications(i, domain, now) {
					if _, err := st.Create(ctx, p); err != nil {
						once.Do(func() { firstErr = err })
						return
					}
					w := wrote.Add(1)
					if progress != nil && w%100000 == 0 {
						fmt.Fprintf(progress, "fill: %d publications stored (%.0f/s)\n", w, float64(w)/time.Since(t0).Seconds())
					}
				}
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		return int(wrote.Load()), fmt.Errorf("fill: %w", firstErr)
	}
	return int(wrote.Load()), ctx.Err()
}

package compositor

import (
	"log/slog"
	"testing"
	"time"

	"github.com/presencehub/presencehub/compositor/dialoginfo"
	"github.com/presencehub/presencehub/compositor/store"
)

// Under group commit the feed often brings one of Publish's own writes
// before Publish applies it; it must take the body Publish parsed rather
// than parse the stored bytes again (and decode their bookkeeping).
func TestFeed_TakesTheBodyPublishParsedWhileTheWriteIsInFlight(t *testing.T) {
	now := time.Date(2030, 5, 6, 7, 8, 9, 0, time.UTC)
	body := []byte(`<dialog-info xmlns="urn:ietf:params:xml:ns:dialog-info" version="0" state="full" entity="` + res + `"><dialog id="d1"><state>confirmed</state></dialog></dialog-info>`)
	pub := store.Publication{ID: "p1", ETag: "e1", Resource: res, Event: EventDialog, Body: body, ContentType: ContentTypeDialogInfo, Expires: now.Add(time.Hour)}
	for _, tc := range []struct {
		name        string
		flying      store.Publication // what Publish recorded; zero: nothing
		landed      bool              // Publish forgot it again
		wantHandOff bool
	}{
		{"in flight", pub, false, true},
		{"landed", pub, true, false},
		{"same entity-tag, other publication", store.Publication{ID: "p2", ETag: pub.ETag}, false, false},
		{"nothing in flight", store.Publication{}, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newCache(Config{Now: func() time.Time { return now }, Logger: slog.New(slog.DiscardHandler)})
			handed := &dialoginfo.Document{Entity: res, Dialogs: []dialoginfo.Dialog{{ID: "d1", State: dialoginfo.Confirmed}}}
			if tc.flying.ID != "" {
				c.takeOff(tc.flying, parsed{dialogs: handed, hasMeta: true})
				if tc.landed {
					c.land(tc.flying.ETag)
				}
			}
			c.applyFeed(store.Change{Kind: store.ChangePut, Rev: 1, Pub: pub})
			e := c.byID[pub.ID]
			if e == nil || e.dialogs == nil {
				t.Fatal("the feed did not apply the write")
			}
			if got := e.dialogs == handed; got != tc.wantHandOff {
				t.Fatalf("feed used Publish's parsed body: %v, want %v", got, tc.wantHandOff)
			}
		})
	}
}

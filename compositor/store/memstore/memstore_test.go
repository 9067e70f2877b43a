package memstore_test

import (
	"testing"
	"time"

	"github.com/presencehub/presencehub/compositor/store"
	"github.com/presencehub/presencehub/compositor/store/memstore"
	"github.com/presencehub/presencehub/compositor/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T, now func() time.Time) store.Store {
		return memstore.New(memstore.Options{Now: now})
	})
}

package storetest

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/presencehub/presencehub/compositor/store"
)

// testLists checks store.Lists (skipped for a store without it): put,
// replace, get, all in name order, delete, not found.
func testLists(t *testing.T, newStore Factory) {
	s := open(t, newStore, time.Now)
	ls, ok := s.(store.Lists)
	if !ok {
		t.Skip("store keeps no lists")
	}
	ctx := context.Background()
	if _, err := ls.GetList(ctx, "team"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("GetList of nothing: %v, want ErrNotFound", err)
	}
	team := store.ResourceList{Name: "team", Event: "dialog", Members: []string{"1001", "sip:1002@x.test"}, Names: map[string]string{"1001": "Reception"}, Updated: epoch}
	other := store.ResourceList{Name: "alpha", Event: "presence", Members: []string{"1"}, Updated: epoch}
	for _, l := range []store.ResourceList{team, other} {
		if err := ls.PutList(ctx, l); err != nil {
			t.Fatal(err)
		}
	}
	team.Members = append(team.Members, "1003")
	if err := ls.PutList(ctx, team); err != nil {
		t.Fatal(err)
	}
	got, err := ls.GetList(ctx, "team")
	if err != nil || !reflect.DeepEqual(got.Members, team.Members) || got.Names["1001"] != "Reception" || got.Event != "dialog" || !got.Updated.Equal(epoch) {
		t.Fatalf("GetList: %+v %v, want %+v", got, err, team)
	}
	all, err := ls.AllLists(ctx)
	if err != nil || len(all) != 2 || all[0].Name != "alpha" || all[1].Name != "team" {
		t.Fatalf("AllLists: %+v %v", all, err)
	}
	if err := ls.DeleteList(ctx, "team"); err != nil {
		t.Fatal(err)
	}
	if err := ls.DeleteList(ctx, "team"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("DeleteList twice: %v, want ErrNotFound", err)
	}
	if all, _ := ls.AllLists(ctx); len(all) != 1 {
		t.Fatalf("after delete: %+v", all)
	}
}

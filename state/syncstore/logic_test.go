package syncstore

import (
	"errors"
	"testing"
	"time"

	"github.com/weftnet/weft/kvstore"
	"github.com/weftnet/weft/state/internal/memstore"
	"github.com/weftnet/weft/state/statetest"
)

// TestMarkerComesLast checks ordering on an in-memory store: a synced
// marker registered while keys are pending is written only after them, a
// deleted key disappears, and an unchanged Upsert is not written again.
func TestMarkerComesLast(t *testing.T) {
	ctx := statetest.Context(t, time.Minute)
	c := memstore.New().NewClient("")
	st, err := New(c, DefaultConfig(), statetest.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	events := c.ListAndWatch(ctx, "weft/")
	if ev := <-events; ev.Type != kvstore.EventListDone {
		t.Fatalf("first event %v, want list-done on an empty store", ev)
	}
	for _, k := range []string{"a", "b", "c"} {
		st.Upsert("weft/"+k, []byte(k))
	}
	st.MarkSynced("weft/synced", []byte("now"))
	st.Delete("weft/b") // never written, or written then deleted
	statetest.Go(t, st.Run)
	if err := st.WaitSynced(ctx); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for len(seen) < 3 {
		ev := <-events
		if ev.Type != kvstore.EventUpsert {
			continue
		}
		if ev.Key == "weft/synced" && (!seen["weft/a"] || !seen["weft/c"]) {
			t.Fatalf("marker written before the keys: seen %v", seen)
		}
		seen[ev.Key] = true
	}
	if _, err := c.Get(ctx, "weft/b"); !errors.Is(err, kvstore.ErrNotFound) {
		t.Fatalf("deleted key: %v, want ErrNotFound", err)
	}
	kv, err := c.Get(ctx, "weft/a")
	if err != nil {
		t.Fatal(err)
	}
	st.Upsert("weft/a", []byte("a"))
	if err := st.WaitSynced(ctx); err != nil {
		t.Fatal(err)
	}
	if again, err := c.Get(ctx, "weft/a"); err != nil || again.Revision != kv.Revision {
		t.Fatalf("unchanged Upsert rewrote the key: %+v, %v", again, err)
	}
	if st.Len() != 3 {
		t.Fatalf("owned keys %d, want 3 (a, c, marker)", st.Len())
	}
}

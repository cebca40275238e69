package kvstoretest

import (
	"context"
	"fmt"
	"maps"
	"net/url"
	"testing"
	"time"

	"github.com/weftnet/weft/kvstore"
)

// testWatchOrder: the current keys, then one list-done marker, then each
// change in the order it was made.
func testWatchOrder(t *testing.T, s Server) {
	p := prefixFor(t, s)
	c := s.NewClient(t)
	for _, k := range []string{"b", "a", "c"} {
		mustUpdate(t, c, p+k, "init-"+k)
	}
	w := startWatch(t, s.NewClient(t), p)
	w.waitListed(t)
	initial := w.eventsFrom(0)
	if len(initial) != 4 || initial[3].Type != kvstore.EventListDone {
		t.Fatalf("initial events %v: want 3 upserts then list-done", initial)
	}
	got, _ := w.snapshot()
	if want := map[string]string{p + "a": "init-a", p + "b": "init-b", p + "c": "init-c"}; !maps.Equal(got, want) {
		t.Fatalf("initial listing %v, want %v", got, want)
	}

	steps := []struct {
		op, key, value string
	}{
		{"put", "d", "1"}, {"put", "a", "2"}, {"del", "b", ""}, {"put", "b", "3"}, {"del", "d", ""}, {"put", "a", "4"},
	}
	ctx := ctxFor(t)
	for i, st := range steps {
		before := w.count()
		if st.op == "put" {
			mustUpdate(t, c, p+st.key, st.value)
		} else if err := c.Delete(ctx, p+st.key); err != nil {
			t.Fatal(err)
		}
		eventually(t, 30*time.Second, fmt.Sprintf("event of step %d", i), func() error {
			if w.count() == before {
				return fmt.Errorf("no event yet")
			}
			return nil
		})
		evs := w.eventsFrom(before)
		wantType := kvstore.EventUpsert
		if st.op == "del" {
			wantType = kvstore.EventDelete
		}
		if len(evs) != 1 || evs[0].Type != wantType || evs[0].Key != p+st.key || string(evs[0].Value) != st.value {
			t.Fatalf("step %d (%s %s=%s): got events %v", i, st.op, st.key, st.value, evs)
		}
	}
}

// testWatchBurst: many changes without waiting; the watcher ends with exactly
// the store's contents and per-key revisions never go backwards.
func testWatchBurst(t *testing.T, s Server) {
	p := prefixFor(t, s)
	c := s.NewClient(t)
	w := startWatch(t, s.NewClient(t), p)
	w.waitListed(t)
	ctx := ctxFor(t)
	for i := range 200 {
		key := fmt.Sprintf("%sk%02d", p, i%25)
		if i%7 == 3 {
			if err := c.Delete(ctx, key); err != nil {
				t.Fatal(err)
			}
			continue
		}
		mustUpdate(t, c, key, fmt.Sprint(i))
	}
	w.waitConverged(t, c, p)
}

// testWatchDisconnect: the watcher is cut off its store while keys are
// deleted and created; once reconnected it emits the deletes it missed.
func testWatchDisconnect(t *testing.T, s Server) {
	watchThroughCut(t, s, nil)
}

// testWatchCompaction: as above, but the history the watcher would resume
// from is compacted away meanwhile, so it must re-list.
func testWatchCompaction(t *testing.T, s Server) {
	watchThroughCut(t, s, func() { s.(Compacter).Compact(t) })
}

func watchThroughCut(t *testing.T, s Server, whileCut func()) {
	p := prefixFor(t, s)
	direct := s.NewClient(t)
	for _, k := range []string{"a", "b", "c"} {
		mustUpdate(t, direct, p+k, k)
	}
	u, err := url.Parse(s.Config().Endpoints[0])
	if err != nil {
		t.Fatal(err)
	}
	proxy := NewProxy(t, u.Host)
	viaProxy := s.NewClient(t, func(c *kvstore.Config) { c.Endpoints = []string{u.Scheme + "://" + proxy.Addr()} })
	w := startWatch(t, viaProxy, p)
	w.waitConverged(t, direct, p)
	mark := w.count()

	proxy.Cut()
	ctx := ctxFor(t)
	for _, k := range []string{"a", "b"} {
		if err := direct.Delete(ctx, p+k); err != nil {
			t.Fatal(err)
		}
	}
	mustUpdate(t, direct, p+"d", "d")
	mustUpdate(t, direct, p+"c", "c2")
	if whileCut != nil {
		whileCut()
	}
	proxy.Restore()

	w.waitConverged(t, direct, p)
	if del := deletedKeys(w.eventsFrom(mark)); !del[p+"a"] || !del[p+"b"] {
		t.Fatalf("after reconnecting, deletes emitted for %v; want %sa and %sb", del, p, p)
	}
}

// testWatchRestart: the store restarts under a running watcher and a client;
// both carry on and the watcher converges, deletes included.
func testWatchRestart(t *testing.T, s Server) {
	p := prefixFor(t, s)
	c := s.NewClient(t)
	for _, k := range []string{"a", "b", "c"} {
		mustUpdate(t, c, p+k, k)
	}
	w := startWatch(t, s.NewClient(t), p)
	w.waitConverged(t, c, p)
	mark := w.count()

	s.Restart(t)

	var err error
	eventually(t, 60*time.Second, "client works after the store restarted", func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err = c.Delete(ctx, p+"b"); err != nil {
			return err
		}
		_, err = c.Update(ctx, p+"d", []byte("d"), kvstore.Leased())
		return err
	})
	w.waitConverged(t, c, p)
	if del := deletedKeys(w.eventsFrom(mark)); !del[p+"b"] {
		t.Fatalf("delete of %sb made after the restart was not emitted (deletes: %v)", p, del)
	}
	if got, _ := w.snapshot(); got[p+"d"] != "d" {
		t.Fatalf("key written after the restart missing from the watcher: %v", got)
	}
}

// testMemberLoss: a 3-member cluster loses one member; reads, writes,
// watches and locks carry on through the others.
func testMemberLoss(t *testing.T, s Server) {
	p := prefixFor(t, s)
	c := s.NewClient(t)
	w := startWatch(t, s.NewClient(t), p)
	mustUpdate(t, c, p+"before", "1")
	w.waitConverged(t, c, p)

	s.(MemberStopper).StopMember(t, 0)

	eventually(t, 60*time.Second, "write after losing a member", func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, err := c.Update(ctx, p+"after", []byte("2"))
		return err
	})
	w.waitConverged(t, c, p)
	if got, _ := w.snapshot(); got[p+"after"] != "2" {
		t.Fatalf("watcher missed the write made after losing a member: %v", got)
	}
	l, err := c.Lock(ctxFor(t), p+"mutex")
	if err != nil {
		t.Fatalf("lock after losing a member: %v", err)
	}
	l.Unlock(ctxFor(t))
	if st := c.Status(ctxFor(t)); !st.Quorum {
		t.Fatalf("status after losing 1 of 3 members: %+v, want quorum", st)
	}
}

package ipcache

import (
	"testing"
	"time"

	"github.com/weftnet/weft/internal/testgate"
	"github.com/weftnet/weft/kvstore/kvstoretest"
	"github.com/weftnet/weft/state/records"
	"github.com/weftnet/weft/state/statetest"
)

// TestWatcherStartedLate: a watcher started after 10k entries exist ends
// with exactly the store's contents, in its view and in the events it
// emitted, and reports synced only once the canary exists. A watcher
// restored from a previous run drains the entries the store no longer has.
func TestWatcherStartedLate(t *testing.T) {
	testgate.Short(t) // about a minute per backend on 2 busy cores
	statetest.Each(t, func(t *testing.T, s kvstoretest.Server) {
		const n = 10000
		ctx := statetest.Context(t, 3*time.Minute)
		pubClient := s.NewClient(t, statetest.Unlimited)
		pub, st := newPublisher(t, pubClient)
		id := records.ClusterIdentity(1, 300)
		for i := range n {
			if err := pub.Publish(entry(i, id)); err != nil {
				t.Fatal(err)
			}
		}
		if err := st.WaitSynced(ctx); err != nil {
			t.Fatal(err)
		}
		late := startWatcher(t, s.NewClient(t), nil)
		statetest.Eventually(t, time.Minute, "late watcher lists every entry", func() error { return late.matches(ctx, pubClient) })
		select {
		case <-late.Synced():
			t.Fatal("watcher synced before the synced canary was written")
		default:
		}
		if err := pub.MarkSynced(time.Now()); err != nil {
			t.Fatal(err)
		}
		waitSynced(t, late, time.Minute)

		gone := []records.IPCacheEntry{entry(n+1, id), entry(n+2, id)}
		pub.Withdraw(entry(5, id).IP)
		if err := st.WaitSynced(ctx); err != nil {
			t.Fatal(err)
		}
		restored := startWatcher(t, s.NewClient(t), append(gone, entry(5, id), entry(6, id)))
		waitSynced(t, restored, time.Minute)
		statetest.Eventually(t, time.Minute, "restored watcher drains stale entries", func() error { return restored.matches(ctx, pubClient) })
		restored.mu.Lock()
		defer restored.mu.Unlock()
		if len(restored.deletes) != 3 {
			t.Fatalf("restored watcher emitted deletes for %v, want the 3 entries the store does not hold", restored.deletes)
		}
	})
}

// TestWatcherLivesThroughRestart: the store restarts (a Consul dev agent
// comes back empty and the publisher re-creates its entries under a new
// session) with changes just before and after; a watcher that lived through
// it ends with exactly the store's contents.
func TestWatcherLivesThroughRestart(t *testing.T) {
	statetest.Each(t, func(t *testing.T, s kvstoretest.Server) {
		const n = 2000
		ctx := statetest.Context(t, 3*time.Minute)
		pubClient := s.NewClient(t, statetest.Unlimited)
		pub, st := newPublisher(t, pubClient)
		id := records.ClusterIdentity(1, 300)
		// As in an agent, the watcher shares the publisher's client (and
		// so its lease/session).
		w := startWatcher(t, pubClient, nil)
		for i := range n {
			if err := pub.Publish(entry(i, id)); err != nil {
				t.Fatal(err)
			}
		}
		if err := pub.MarkSynced(time.Now()); err != nil {
			t.Fatal(err)
		}
		if err := st.WaitSynced(ctx); err != nil {
			t.Fatal(err)
		}
		waitSynced(t, w, time.Minute)
		for i := 0; i < 200; i++ {
			pub.Withdraw(entry(i, id).IP)
		}
		s.Restart(t)
		for i := 200; i < 400; i++ {
			if err := pub.Publish(entry(i, records.ClusterIdentity(1, 301))); err != nil {
				t.Fatal(err)
			}
		}
		for i := 400; i < 500; i++ {
			pub.Withdraw(entry(i, id).IP)
		}
		reader := s.NewClient(t)
		statetest.Eventually(t, 90*time.Second, "watcher converges to the store after its restart", func() error {
			if err := st.WaitSynced(ctx); err != nil {
				return err
			}
			return w.matches(ctx, reader)
		})
	})
}

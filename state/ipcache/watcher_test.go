package ipcache

import (
	"context"
	"fmt"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/weftnet/weft/kvstore"
	"github.com/weftnet/weft/state/records"
	"github.com/weftnet/weft/state/statetest"
	"github.com/weftnet/weft/state/syncstore"
)

const cluster = "c1"

func entry(i int, identity records.ID) records.IPCacheEntry {
	return records.IPCacheEntry{
		IP:       netip.AddrFrom4([4]byte{10, 100, byte(i >> 8), byte(i)}),
		Identity: identity,
		HostIP:   netip.AddrFrom4([4]byte{192, 168, 0, byte(i % 20)}),
		Pod:      fmt.Sprintf("pod-%d", i), Namespace: "default",
	}
}

// newPublisher starts a sync store and publisher on c.
func newPublisher(t testing.TB, c kvstore.Client) (*Publisher, *syncstore.Store) {
	t.Helper()
	cfg := syncstore.DefaultConfig()
	cfg.Workers, cfg.QPS = 16, 0
	st, err := syncstore.New(c, cfg, statetest.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	statetest.Go(t, st.Run)
	p, err := NewPublisher(st, c.Prefix(), cluster)
	if err != nil {
		t.Fatal(err)
	}
	return p, st
}

// recorder is a watcher plus the view its change events add up to.
type recorder struct {
	*Watcher
	mu      sync.Mutex
	view    map[netip.Addr]records.IPCacheEntry
	deletes []netip.Addr
}

func startWatcher(t testing.TB, c kvstore.Client, restore []records.IPCacheEntry) *recorder {
	t.Helper()
	r := &recorder{view: map[netip.Addr]records.IPCacheEntry{}}
	for _, e := range restore {
		r.view[e.IP] = e
	}
	w, err := NewWatcher(c, cluster, func(ch Change) {
		r.mu.Lock()
		defer r.mu.Unlock()
		if ch.Type == Upsert {
			r.view[ch.Entry.IP] = ch.Entry
		} else {
			delete(r.view, ch.Entry.IP)
			r.deletes = append(r.deletes, ch.Entry.IP)
		}
	}, statetest.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	w.Restore(restore)
	r.Watcher = w
	statetest.Go(t, w.Run)
	return r
}

// matches reports how the watcher's view and its events differ from the store.
func (r *recorder) matches(ctx context.Context, c kvstore.Client) error {
	keys := records.NewKeys(c.Prefix())
	kvs, err := c.List(ctx, keys.IPCachePrefix(cluster))
	if err != nil {
		return err
	}
	snap := r.Snapshot()
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(snap) != len(kvs) || len(r.view) != len(kvs) {
		return fmt.Errorf("view holds %d entries (events add up to %d), store %d", len(snap), len(r.view), len(kvs))
	}
	for _, kv := range kvs {
		e, err := keys.DecodeIPCacheEntry(kv.Key, kv.Value)
		if err != nil {
			return err
		}
		if got, ok := snap[e.IP]; !ok || !sameEntry(got, e) {
			return fmt.Errorf("view has %+v for %s, store %+v", got, e.IP, e)
		}
		if got := r.view[e.IP]; !sameEntry(got, e) {
			return fmt.Errorf("events add up to %+v for %s, store %+v", got, e.IP, e)
		}
	}
	return nil
}

func waitSynced(t testing.TB, r *recorder, d time.Duration) {
	t.Helper()
	select {
	case <-r.Synced():
	case <-time.After(d):
		t.Fatalf("watcher not synced within %v", d)
	}
}

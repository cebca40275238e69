package ipcache

import (
	"context"
	"net/netip"

	"golang.org/x/sync/errgroup"

	"github.com/weftnet/weft/kvstore"
	"github.com/weftnet/weft/state/records"
)

// Run applies the store's entries until ctx ends. Restarts, reconnects and
// compactions are handled by the store's list-and-watch, which re-lists and
// emits deletes for entries that vanished meanwhile.
func (w *Watcher) Run(ctx context.Context) error {
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		for first := true; ctx.Err() == nil; first = false {
			if !first {
				w.markAllStale()
			}
			w.watchUntilLeaseLost(ctx)
		}
		return nil
	})
	g.Go(func() error {
		// The canary only gates the first sync: stop watching it once
		// seen (a Consul watch holds an HTTP connection).
		cctx, cancel := context.WithCancel(ctx)
		defer cancel()
		canary := w.keys.Synced(w.cluster, records.KindIPCache)
		if _, err := w.client.Get(ctx, canary); err == nil {
			w.mu.Lock()
			w.canary = true
			w.checkSyncedLocked()
			w.mu.Unlock()
			return nil // already there: no watch (and connection) needed
		}
		for ev := range w.client.ListAndWatch(cctx, canary) {
			if ev.Type == kvstore.EventUpsert && ev.Key == canary {
				w.mu.Lock()
				w.canary = true
				w.checkSyncedLocked()
				w.mu.Unlock()
				cancel()
			}
		}
		return nil
	})
	return g.Wait()
}

// watchUntilLeaseLost applies one list-and-watch stream until ctx ends or
// the client's lease is lost. A lost lease usually means the store lost
// state (a restarted Consul agent comes back empty): the caller then lists
// afresh and drains what the new listing does not confirm, instead of
// trusting a watch that may be blocked on an index from before the restart.
func (w *Watcher) watchUntilLeaseLost(ctx context.Context) {
	lost := w.client.LeaseLost()
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		select {
		case <-lost:
			w.log.Info("lease lost: re-listing ipcache entries")
			cancel()
		case <-stop:
		}
	}()
	for ev := range w.client.ListAndWatch(wctx, w.keys.IPCachePrefix(w.cluster)) {
		w.apply(ev)
	}
}

// markAllStale makes every entry stale until the next listing confirms it.
func (w *Watcher) markAllStale() {
	w.mu.Lock()
	defer w.mu.Unlock()
	for ip := range w.entries {
		w.stale[ip] = true
	}
}

func (w *Watcher) apply(ev kvstore.Event) {
	switch ev.Type {
	case kvstore.EventListDone:
		w.listDone()
	case kvstore.EventUpsert:
		e, err := w.keys.DecodeIPCacheEntry(ev.Key, ev.Value)
		if err != nil {
			w.log.Warn("drop malformed ipcache entry", "err", err)
			if _, ip, perr := w.keys.ParseIPCacheKey(ev.Key); perr == nil {
				w.remove(ip) // the store no longer holds a valid entry for ip
			}
			return
		}
		w.mu.Lock()
		old, had := w.entries[e.IP]
		w.entries[e.IP] = e
		delete(w.stale, e.IP)
		w.mu.Unlock()
		if !had || !sameEntry(old, e) {
			w.onChange(Change{Type: Upsert, Entry: e})
		}
	case kvstore.EventDelete:
		if _, ip, err := w.keys.ParseIPCacheKey(ev.Key); err == nil {
			w.remove(ip)
		}
	}
}

func (w *Watcher) remove(ip netip.Addr) {
	w.mu.Lock()
	old, had := w.entries[ip]
	delete(w.entries, ip)
	delete(w.stale, ip)
	w.mu.Unlock()
	if had {
		w.onChange(Change{Type: Delete, Entry: old})
	}
}

// listDone drains restored entries the listing did not confirm.
func (w *Watcher) listDone() {
	w.mu.Lock()
	stale := w.stale
	w.stale = map[netip.Addr]bool{}
	w.mu.Unlock()
	for ip := range stale {
		w.remove(ip)
	}
	w.mu.Lock()
	if !w.listed {
		w.listed = true
		close(w.listedC)
	}
	w.checkSyncedLocked()
	w.mu.Unlock()
}

func (w *Watcher) checkSyncedLocked() {
	if w.listed && w.canary {
		select {
		case <-w.synced:
		default:
			close(w.synced)
			w.log.Debug("ipcache synced", "entries", len(w.entries))
		}
	}
}

func sameEntry(a, b records.IPCacheEntry) bool {
	if a.IP != b.IP || a.Identity != b.Identity || a.HostIP != b.HostIP || a.Namespace != b.Namespace || a.Pod != b.Pod || len(a.NamedPorts) != len(b.NamedPorts) {
		return false
	}
	for i := range a.NamedPorts {
		if a.NamedPorts[i] != b.NamedPorts[i] {
			return false
		}
	}
	return true
}

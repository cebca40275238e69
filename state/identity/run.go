package identity

import (
	"context"
	"time"

	"github.com/weftnet/weft/kvstore"
	"golang.org/x/sync/errgroup"
)

// identityWatchCoalescing bounds how late a burst of identity changes
// reaches the cache on Consul, where each wake-up re-lists every identity
// (docs/performance.md: 8 allocators went from ~115 to ~650 ids/s).
const identityWatchCoalescing = 100 * time.Millisecond

// Run watches the master keys (Allocate waits until they are listed) and,
// whenever the client's lease is lost, re-creates every reference this node
// holds under the new lease. It returns when ctx ends.
func (a *Allocator) Run(ctx context.Context) error {
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		// The cache serves lookups; allocation itself checks the store, so a
		// change may come up to identityWatchCoalescing late (Consul only).
		wctx := kvstore.WithWatchCoalescing(ctx, identityWatchCoalescing)
		for ev := range a.client.ListAndWatch(wctx, a.keys.IdentitiesPrefix()) {
			a.cache.apply(ev)
		}
		return nil
	})
	g.Go(func() error {
		lost := a.lost
		for {
			select {
			case <-lost:
				// Take the next lease's channel before repairing, so a
				// loss during the repair is not missed.
				lost = a.client.LeaseLost()
				a.restoreAll(ctx)
			case <-ctx.Done():
				return nil
			}
		}
	})
	return g.Wait()
}

// restoreAll re-acquires every held identity, retrying with backoff.
func (a *Allocator) restoreAll(ctx context.Context) {
	a.mu.Lock()
	names := make([]string, 0, len(a.held))
	for name := range a.held {
		names = append(names, name)
	}
	a.mu.Unlock()
	a.log.Info("lease lost: re-creating identity references", "count", len(names))
	for _, name := range names {
		bo := kvstore.NewBackoff(50*time.Millisecond, 5*time.Second)
		for ctx.Err() == nil {
			err := a.restore(ctx, name)
			if err == nil {
				break
			}
			a.log.Warn("re-create identity reference", "labels", name, "err", err)
			bo.Wait(ctx)
		}
	}
}

func (a *Allocator) restore(ctx context.Context, name string) error {
	unlock, err := a.local.Lock(ctx, name)
	if err != nil {
		return err
	}
	defer unlock()
	a.mu.Lock()
	h := a.held[name]
	a.mu.Unlock()
	if h == nil {
		return nil // released meanwhile
	}
	id, err := a.acquireLeased(ctx, h.labels, h.id)
	if err != nil {
		return err
	}
	if id != h.id {
		a.log.Error("identity changed while re-creating its reference", "labels", name, "old", h.id, "new", id)
		a.mu.Lock()
		h.id = id
		a.mu.Unlock()
	}
	return nil
}

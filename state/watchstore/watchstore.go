package watchstore

import (
	"context"
	"log/slog"
	"maps"
	"sync"

	"golang.org/x/sync/errgroup"

	"github.com/weftnet/weft/kvstore"
)

// Change is one change of the view: Value is the new value (Deleted false)
// or the removed one (Deleted true).
type Change[T any] struct {
	Key     string
	Value   T
	Deleted bool
}

// Config of a Watcher.
type Config[T any] struct {
	Prefix string                                    // what to mirror
	Canary string                                    // synced marker to wait for ("" for none)
	Decode func(key string, value []byte) (T, error) // records decoder
	Equal  func(a, b T) bool                         // suppresses no-op upserts (nil: never equal)
	// OnChange is called for every change, in order, from Run's goroutine.
	OnChange func(Change[T])
}

// Watcher mirrors a prefix.
type Watcher[T any] struct {
	client kvstore.Client
	cfg    Config[T]
	log    *slog.Logger

	mu     sync.RWMutex
	items  map[string]T
	stale  map[string]bool // items a re-listing has not confirmed yet
	listed bool
	canary bool
	synced chan struct{}
}

// New returns a watcher; Run fills it.
func New[T any](client kvstore.Client, cfg Config[T], log *slog.Logger) *Watcher[T] {
	if cfg.OnChange == nil {
		cfg.OnChange = func(Change[T]) {}
	}
	if cfg.Equal == nil {
		cfg.Equal = func(T, T) bool { return false }
	}
	return &Watcher[T]{client: client, cfg: cfg, log: log.With("component", "watchstore", "prefix", cfg.Prefix),
		items: map[string]T{}, stale: map[string]bool{}, synced: make(chan struct{})}
}

// Synced is closed once the initial listing is complete and the canary (if
// any) exists.
func (w *Watcher[T]) Synced() <-chan struct{} { return w.synced }

// Get returns the value of key.
func (w *Watcher[T]) Get(key string) (T, bool) {
	w.mu.RLock()
	defer w.mu.RUnlock()
	v, ok := w.items[key]
	return v, ok
}

// Snapshot copies the view.
func (w *Watcher[T]) Snapshot() map[string]T {
	w.mu.RLock()
	defer w.mu.RUnlock()
	return maps.Clone(w.items)
}

// Run applies the store's changes until ctx ends.
func (w *Watcher[T]) Run(ctx context.Context) error {
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		for first := true; ctx.Err() == nil; first = false {
			if !first {
				w.mu.Lock()
				for k := range w.items {
					w.stale[k] = true
				}
				w.mu.Unlock()
			}
			w.watchUntilLeaseLost(ctx)
		}
		return nil
	})
	if w.cfg.Canary == "" {
		w.mu.Lock()
		w.canary = true
		w.mu.Unlock()
	} else {
		g.Go(func() error {
			// The canary only gates the first sync: stop watching it once seen.
			cctx, cancel := context.WithCancel(ctx)
			defer cancel()
			if _, err := w.client.Get(ctx, w.cfg.Canary); err == nil {
				w.mu.Lock()
				w.canary = true
				w.checkSyncedLocked()
				w.mu.Unlock()
				return nil
			}
			for ev := range w.client.ListAndWatch(cctx, w.cfg.Canary) {
				if ev.Type == kvstore.EventUpsert && ev.Key == w.cfg.Canary {
					w.mu.Lock()
					w.canary = true
					w.checkSyncedLocked()
					w.mu.Unlock()
					cancel()
				}
			}
			return nil
		})
	}
	return g.Wait()
}

// watchUntilLeaseLost applies one list-and-watch stream until ctx ends or
// the client's lease is lost (the store may have lost state, e.g. a
// restarted Consul agent): the caller then re-lists and drops what the new
// listing does not confirm.
func (w *Watcher[T]) watchUntilLeaseLost(ctx context.Context) {
	lost := w.client.LeaseLost()
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		select {
		case <-lost:
			cancel()
		case <-stop:
		}
	}()
	for ev := range w.client.ListAndWatch(wctx, w.cfg.Prefix) {
		w.apply(ev)
	}
}

func (w *Watcher[T]) apply(ev kvstore.Event) {
	switch ev.Type {
	case kvstore.EventListDone:
		w.mu.Lock()
		stale := w.stale
		w.stale = map[string]bool{}
		w.mu.Unlock()
		for k := range stale {
			w.remove(k)
		}
		w.mu.Lock()
		w.listed = true
		w.checkSyncedLocked()
		w.mu.Unlock()
	case kvstore.EventUpsert:
		v, err := w.cfg.Decode(ev.Key, ev.Value)
		if err != nil {
			w.log.Warn("drop malformed value", "err", err)
			w.remove(ev.Key)
			return
		}
		w.mu.Lock()
		old, had := w.items[ev.Key]
		w.items[ev.Key] = v
		delete(w.stale, ev.Key)
		w.mu.Unlock()
		if !had || !w.cfg.Equal(old, v) {
			w.cfg.OnChange(Change[T]{Key: ev.Key, Value: v})
		}
	case kvstore.EventDelete:
		w.remove(ev.Key)
	}
}

func (w *Watcher[T]) remove(key string) {
	w.mu.Lock()
	old, had := w.items[key]
	delete(w.items, key)
	delete(w.stale, key)
	w.mu.Unlock()
	if had {
		w.cfg.OnChange(Change[T]{Key: key, Value: old, Deleted: true})
	}
}

func (w *Watcher[T]) checkSyncedLocked() {
	if w.listed && w.canary {
		select {
		case <-w.synced:
		default:
			close(w.synced)
		}
	}
}

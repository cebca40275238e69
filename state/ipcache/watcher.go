package ipcache

import (
	"fmt"
	"log/slog"
	"maps"
	"net/netip"
	"sync"

	"github.com/weftnet/weft/kvstore"
	"github.com/weftnet/weft/state/records"
)

// ChangeType says what happened to an address.
type ChangeType int

const (
	Upsert ChangeType = iota
	Delete
)

// Change is one change of the local view. Entry is the new entry (Upsert)
// or the removed one (Delete).
type Change struct {
	Type  ChangeType
	Entry records.IPCacheEntry
}

// Watcher mirrors one cluster's ipcache entries.
type Watcher struct {
	client   kvstore.Client
	keys     records.Keys
	cluster  string
	log      *slog.Logger
	onChange func(Change)

	mu      sync.RWMutex
	entries map[netip.Addr]records.IPCacheEntry
	stale   map[netip.Addr]bool // restored entries not (yet) seen in the store
	listed  bool
	canary  bool
	synced  chan struct{}
	listedC chan struct{}
}

// NewWatcher watches cluster's entries through client. onChange, if not
// nil, is called for every change, in order, from Run's goroutine.
func NewWatcher(client kvstore.Client, cluster string, onChange func(Change), log *slog.Logger) (*Watcher, error) {
	if err := records.ValidateClusterName(cluster); err != nil {
		return nil, fmt.Errorf("ipcache watcher: %w", err)
	}
	if onChange == nil {
		onChange = func(Change) {}
	}
	return &Watcher{
		client: client, keys: records.NewKeys(client.Prefix()), cluster: cluster,
		log:      log.With("component", "ipcache-watcher", "cluster", cluster),
		onChange: onChange,
		entries:  map[netip.Addr]records.IPCacheEntry{}, stale: map[netip.Addr]bool{},
		synced: make(chan struct{}), listedC: make(chan struct{}),
	}, nil
}

// Restore seeds the view with entries kept from a previous run (before
// Run). Those the store no longer holds are deleted, with a Delete change,
// once the initial listing is complete.
func (w *Watcher) Restore(entries []records.IPCacheEntry) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, e := range entries {
		w.entries[e.IP] = e
		w.stale[e.IP] = true
	}
}

// Synced is closed once the initial listing is complete and the cluster's
// synced/<cluster>/ip canary exists.
func (w *Watcher) Synced() <-chan struct{} { return w.synced }

// Listed is closed once the initial listing is complete, canary or not.
func (w *Watcher) Listed() <-chan struct{} { return w.listedC }

// Get returns the entry of ip.
func (w *Watcher) Get(ip netip.Addr) (records.IPCacheEntry, bool) {
	w.mu.RLock()
	defer w.mu.RUnlock()
	e, ok := w.entries[ip]
	return e, ok
}

// Len is the number of entries in the view.
func (w *Watcher) Len() int {
	w.mu.RLock()
	defer w.mu.RUnlock()
	return len(w.entries)
}

// Snapshot copies the view.
func (w *Watcher) Snapshot() map[netip.Addr]records.IPCacheEntry {
	w.mu.RLock()
	defer w.mu.RUnlock()
	return maps.Clone(w.entries)
}

package identity

import (
	"context"
	"sync"

	"github.com/weftnet/weft/kvstore"
	"github.com/weftnet/weft/state/records"
)

// cache mirrors the master keys: id ↔ labels, fed by a watch.
type cache struct {
	keys records.Keys

	mu       sync.RWMutex
	byID     map[records.ID]records.Labels
	byLabels map[string]records.ID
	synced   chan struct{}
	isSynced bool
}

func newCache(keys records.Keys) *cache {
	return &cache{keys: keys, byID: map[records.ID]records.Labels{}, byLabels: map[string]records.ID{}, synced: make(chan struct{})}
}

func (c *cache) waitSynced(ctx context.Context) error {
	select {
	case <-c.synced:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (c *cache) put(id records.ID, labels records.Labels) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if old, ok := c.byID[id]; ok && c.byLabels[old.String()] == id {
		delete(c.byLabels, old.String())
	}
	c.byID[id] = labels
	c.byLabels[labels.String()] = id
}

func (c *cache) remove(id records.ID) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if old, ok := c.byID[id]; ok && c.byLabels[old.String()] == id {
		delete(c.byLabels, old.String())
	}
	delete(c.byID, id)
}

func (c *cache) taken(id records.ID) bool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	_, ok := c.byID[id]
	return ok
}

func (c *cache) idOf(labels records.Labels) (records.ID, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	id, ok := c.byLabels[labels.String()]
	return id, ok
}

func (c *cache) labelsOf(id records.ID) (records.Labels, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	l, ok := c.byID[id]
	return l, ok
}

// apply feeds one watch event; malformed master keys are ignored.
func (c *cache) apply(ev kvstore.Event) {
	switch ev.Type {
	case kvstore.EventListDone:
		c.mu.Lock()
		if !c.isSynced {
			c.isSynced = true
			close(c.synced)
		}
		c.mu.Unlock()
	case kvstore.EventUpsert:
		if m, err := c.keys.DecodeIdentity(ev.Key, ev.Value); err == nil {
			c.put(m.ID, m.Labels)
		}
	case kvstore.EventDelete:
		if id, err := c.keys.ParseIdentityKey(ev.Key); err == nil {
			c.remove(id)
		}
	}
}

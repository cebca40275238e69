package identity

import (
	"context"
	"sync"

	"github.com/weftnet/weft/kvstore"
	"github.com/weftnet/weft/state/records"
)

// cache mirrors the master keys: id ↔ labels and each key's revision
// (0 when unknown), fed by a watch.
type cache struct {
	keys records.Keys

	mu       sync.RWMutex
	byID     map[records.ID]records.Labels
	byLabels map[string]records.ID
	revs     map[records.ID]uint64
	synced   chan struct{}
	isSynced bool
}

func newCache(keys records.Keys) *cache {
	return &cache{keys: keys, byID: map[records.ID]records.Labels{}, byLabels: map[string]records.ID{}, revs: map[records.ID]uint64{}, synced: make(chan struct{})}
}

func (c *cache) waitSynced(ctx context.Context) error {
	select {
	case <-c.synced:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (c *cache) put(id records.ID, labels records.Labels, rev uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if rev != 0 && rev < c.revs[id] {
		return // an older write than the one already seen
	}
	c.revs[id] = rev
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
	delete(c.revs, id)
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

// entry returns the id of labels and its master key's revision.
func (c *cache) entry(labels records.Labels) (records.ID, uint64, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	id, ok := c.byLabels[labels.String()]
	return id, c.revs[id], ok
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
			c.put(m.ID, m.Labels, ev.Revision)
		}
	case kvstore.EventDelete:
		if id, err := c.keys.ParseIdentityKey(ev.Key); err == nil {
			c.remove(id)
		}
	}
}

package identity

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/weftnet/weft/kvstore"
	"github.com/weftnet/weft/state/records"
)

// Collector deletes master keys of its cluster's range that stayed
// unreferenced through the grace period. It is run by one apiserver per
// cluster; running several is safe, only wasteful.
type Collector struct {
	client kvstore.Client
	keys   records.Keys
	cfg    CollectorConfig
	log    *slog.Logger
	// unreferenced records when each id was first seen without references.
	unreferenced map[records.ID]time.Time
}

// NewCollector returns a collector for cfg.ClusterID's identities.
func NewCollector(client kvstore.Client, cfg CollectorConfig, log *slog.Logger) (*Collector, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Collector{
		client:       client,
		keys:         records.NewKeys(client.Prefix()),
		cfg:          cfg,
		log:          log.With("component", "identity-collector", "cluster-id", cfg.ClusterID),
		unreferenced: map[records.ID]time.Time{},
	}, nil
}

// Run collects every Interval until ctx ends; a failed pass is logged and retried.
func (c *Collector) Run(ctx context.Context) error {
	t := time.NewTicker(c.cfg.Interval)
	defer t.Stop()
	for {
		if deleted, err := c.Collect(ctx); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			c.log.Warn("identity collection pass", "err", err)
		} else if len(deleted) > 0 {
			c.log.Info("collected unreferenced identities", "count", len(deleted))
		}
		select {
		case <-t.C:
		case <-ctx.Done():
			return nil
		}
	}
}

// Collect runs one pass and returns the identities it deleted. An id must
// be seen unreferenced by passes spanning at least Grace before it goes.
func (c *Collector) Collect(ctx context.Context) ([]records.ID, error) {
	masters, err := c.client.List(ctx, c.keys.IdentitiesPrefix())
	if err != nil {
		return nil, fmt.Errorf("list identities: %w", err)
	}
	refs, err := c.client.List(ctx, c.keys.IdentityRefsPrefix())
	if err != nil {
		return nil, fmt.Errorf("list identity references: %w", err)
	}
	referenced := map[records.ID]bool{}
	for _, kv := range refs {
		if r, err := c.keys.DecodeIdentityRef(kv.Key, kv.Value); err == nil {
			referenced[r.ID] = true
		}
	}
	now := time.Now()
	seen := map[records.ID]bool{}
	var deleted []records.ID
	for _, kv := range masters {
		m, err := c.keys.DecodeIdentity(kv.Key, kv.Value)
		if err != nil || m.ID.ClusterID() != c.cfg.ClusterID || m.ID.IsReserved() {
			continue // never touch another cluster's range or a malformed key
		}
		seen[m.ID] = true
		if referenced[m.ID] {
			delete(c.unreferenced, m.ID)
			continue
		}
		since, ok := c.unreferenced[m.ID]
		if !ok {
			c.unreferenced[m.ID] = now
			continue
		}
		if now.Sub(since) < c.cfg.Grace {
			continue
		}
		ok, err = c.deleteIfUnreferenced(ctx, kv, m)
		if err != nil {
			return deleted, err
		}
		delete(c.unreferenced, m.ID)
		if ok {
			deleted = append(deleted, m.ID)
		}
	}
	for id := range c.unreferenced {
		if !seen[id] {
			delete(c.unreferenced, id)
		}
	}
	return deleted, nil
}

// deleteIfUnreferenced deletes a master key under its label set's lock if it
// is unchanged and still has no reference pointing at it. When the store's
// transactions compare prefixes the delete is also conditional on no
// reference of the label set having been written since they were read, as
// lock-free allocators (acquireTxn) do not take the lock.
func (c *Collector) deleteIfUnreferenced(ctx context.Context, kv kvstore.KeyValue, m records.Identity) (bool, error) {
	lock, err := c.client.Lock(ctx, lockName(c.keys, m.Labels))
	if err != nil {
		return false, fmt.Errorf("lock labels of identity %d: %w", m.ID, err)
	}
	defer func() {
		if err := lock.Unlock(context.WithoutCancel(ctx)); err != nil {
			c.log.Warn("unlock identity lock", "id", m.ID, "err", err)
		}
	}()
	refsOf := c.keys.IdentityRefsOf(m.Labels)
	refs, err := c.client.List(ctx, refsOf)
	if err != nil {
		return false, fmt.Errorf("list references of identity %d: %w", m.ID, err)
	}
	var newest uint64
	for _, r := range refs {
		newest = max(newest, r.Revision)
		if ref, err := c.keys.DecodeIdentityRef(r.Key, r.Value); err == nil && ref.ID == m.ID {
			return false, nil
		}
	}
	if tx, ok := c.client.(kvstore.Transactor); ok && tx.ComparesPrefixes() {
		cmps := []kvstore.Compare{kvstore.AtRevision(kv.Key, kv.Revision), kvstore.NothingNewerUnder(refsOf, newest)}
		_, err := tx.Txn(ctx, cmps, []kvstore.Op{kvstore.DeleteOp(kv.Key)})
		if errors.Is(err, kvstore.ErrConflict) {
			return false, nil // rewritten or referenced meanwhile: look again next pass
		}
		if err != nil {
			return false, fmt.Errorf("delete unreferenced %s: %w", kv.Key, err)
		}
	} else if ok, err := c.deleteGuarded(ctx, kv, lock); !ok || err != nil {
		return false, err
	}
	c.log.Debug("deleted unreferenced identity", "id", m.ID, "labels", m.Labels.String())
	return true, nil
}

// deleteGuarded deletes the master key if its revision is unchanged, while
// the lock is held.
func (c *Collector) deleteGuarded(ctx context.Context, kv kvstore.KeyValue, lock kvstore.Lock) (bool, error) {
	cur, err := c.client.Get(ctx, kv.Key)
	if errors.Is(err, kvstore.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("read %s: %w", kv.Key, err)
	}
	if cur.Revision != kv.Revision {
		return false, nil // rewritten meanwhile: look again next pass
	}
	if err := c.client.Delete(ctx, kv.Key, kvstore.Guarded(lock)); err != nil {
		return false, fmt.Errorf("delete unreferenced %s: %w", kv.Key, err)
	}
	return true, nil
}

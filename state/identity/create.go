package identity

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"

	"github.com/weftnet/weft/kvstore"
	"github.com/weftnet/weft/state/records"
)

// randomTries is how many random free-looking ids are tried before a
// sequential scan of the whole range.
const randomTries = 16

// create makes a new master key for labels with a free id of the range,
// guarded by the label set's lock.
func (a *Allocator) create(ctx context.Context, labels records.Labels, guard kvstore.WriteOption) (records.ID, error) {
	return a.eachFreeID(func(id records.ID) (bool, error) {
		return a.createGuarded(ctx, id, labels, guard)
	})
}

// createGuarded creates id's master key for labels; false: it exists.
func (a *Allocator) createGuarded(ctx context.Context, id records.ID, labels records.Labels, guard kvstore.WriteOption) (bool, error) {
	key := a.keys.Identity(id)
	val, err := records.Encode(key, &records.Identity{ID: id, Labels: labels})
	if err != nil {
		return false, err
	}
	rev, err := a.client.Create(ctx, key, val, guard)
	if err != nil {
		if errors.Is(err, kvstore.ErrExists) {
			return false, nil
		}
		return false, fmt.Errorf("create master key %s: %w", key, err)
	}
	a.cache.put(id, labels, rev)
	return true, nil
}

// eachFreeID calls try with ids of the range the cache does not know as
// taken until try takes one (true) or fails. Ids are picked at random, so
// that agents creating identities at once rarely collide; try moves on
// after a collision by returning false. A full range is ErrExhausted.
func (a *Allocator) eachFreeID(try func(records.ID) (bool, error)) (records.ID, error) {
	lo, hi := a.cfg.MinLocal, a.cfg.MaxLocal
	size := hi - lo + 1
	tried := map[uint32]bool{}
	attempt := func(n uint32) (records.ID, bool, error) {
		tried[n] = true
		id := records.ClusterIdentity(a.cfg.ClusterID, n)
		if a.cache.taken(id) {
			return 0, false, nil
		}
		ok, err := try(id)
		if err != nil {
			return 0, false, err
		}
		return id, ok, nil
	}
	for range min(randomTries, int(size)) {
		n := lo + rand.Uint32N(size)
		if tried[n] {
			continue
		}
		if id, ok, err := attempt(n); ok || err != nil {
			return id, err
		}
	}
	start := rand.Uint32N(size)
	for i := range size {
		n := lo + (start+i)%size
		if tried[n] {
			continue
		}
		if id, ok, err := attempt(n); ok || err != nil {
			return id, err
		}
	}
	return 0, fmt.Errorf("%w: all %d identities %d..%d of cluster id %d are in use", ErrExhausted, size,
		records.ClusterIdentity(a.cfg.ClusterID, lo), records.ClusterIdentity(a.cfg.ClusterID, hi), a.cfg.ClusterID)
}

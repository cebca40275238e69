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

// create makes a new master key for labels with a free id of the range.
// Ids are picked at random among those the cache does not know, so that
// agents creating identities at once rarely collide; a collision
// (ErrExists) just moves on to another id.
func (a *Allocator) create(ctx context.Context, labels records.Labels, guard kvstore.WriteOption) (records.ID, error) {
	lo, hi := a.cfg.MinLocal, a.cfg.MaxLocal
	size := hi - lo + 1
	tried := map[uint32]bool{}
	try := func(n uint32) (records.ID, bool, error) {
		tried[n] = true
		id := records.ClusterIdentity(a.cfg.ClusterID, n)
		if a.cache.taken(id) {
			return 0, false, nil
		}
		key := a.keys.Identity(id)
		val, err := records.Encode(key, &records.Identity{ID: id, Labels: labels})
		if err != nil {
			return 0, false, err
		}
		if _, err := a.client.Create(ctx, key, val, guard); err != nil {
			if errors.Is(err, kvstore.ErrExists) {
				return 0, false, nil
			}
			return 0, false, fmt.Errorf("create master key %s: %w", key, err)
		}
		a.cache.put(id, labels)
		return id, true, nil
	}
	for range min(randomTries, int(size)) {
		n := lo + rand.Uint32N(size)
		if tried[n] {
			continue
		}
		if id, ok, err := try(n); ok || err != nil {
			return id, err
		}
	}
	start := rand.Uint32N(size)
	for i := range size {
		n := lo + (start+i)%size
		if tried[n] {
			continue
		}
		if id, ok, err := try(n); ok || err != nil {
			return id, err
		}
	}
	return 0, fmt.Errorf("%w: all %d identities %d..%d of cluster id %d are in use", ErrExhausted, size,
		records.ClusterIdentity(a.cfg.ClusterID, lo), records.ClusterIdentity(a.cfg.ClusterID, hi), a.cfg.ClusterID)
}

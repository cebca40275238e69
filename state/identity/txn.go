package identity

import (
	"context"
	"errors"
	"fmt"

	"github.com/weftnet/weft/kvstore"
	"github.com/weftnet/weft/state/records"
)

// txnRounds bounds how often acquireTxn reads again after conflicting
// writers; acquireLeased starts over (with backoff) after that.
const txnRounds = 8

// errRefsChanged: a conditional write found references of the label set
// written since they were read.
var errRefsChanged = errors.New("references of the label set changed")

// acquireTxn is the lock-free allocation for stores whose transactions
// compare prefixes (etcd). Every write is one transaction conditional on
// what it relies on, so concurrent allocators (and the collector) converge
// without a lock:
//
//   - a reference to an id is written only while that id's master key is
//     unchanged (so it still holds labels and was not collected);
//   - a new master key is created together with the reference, only while
//     no id is taken (the key is absent) and no reference of the label set
//     was written since the allocator looked (none at all on the fast path).
//
// The common cases take one round trip: the id is known from the watched
// master keys, or the label set is new.
func (a *Allocator) acquireTxn(ctx context.Context, tx kvstore.Transactor, labels records.Labels, want records.ID) (records.ID, error) {
	refsOf := a.keys.IdentityRefsOf(labels)
	if id, rev, ok := a.cache.entry(labels); ok {
		if rev != 0 && id.ClusterID() == a.cfg.ClusterID && (want == 0 || want == id) {
			if ok, err := a.writeRef(ctx, tx, labels, id, rev); ok || err != nil {
				return id, err
			}
		}
	} else if want == 0 {
		id, err := a.createTxn(ctx, tx, labels, kvstore.NoneUnder(refsOf))
		if !errors.Is(err, errRefsChanged) {
			return id, err
		}
	}
	for range txnRounds {
		id, err := a.acquireRead(ctx, tx, labels, want)
		if !errors.Is(err, kvstore.ErrConflict) && !errors.Is(err, errRefsChanged) {
			return id, err
		}
	}
	return 0, fmt.Errorf("allocate %s: %w: other writers changed its keys %d times in a row", labels, kvstore.ErrConflict, txnRounds)
}

// acquireRead reads the label set's references and the master keys of the
// ids they (or want, or the cache) name, then writes conditionally on them.
func (a *Allocator) acquireRead(ctx context.Context, tx kvstore.Transactor, labels records.Labels, want records.ID) (records.ID, error) {
	candidates, newest, err := a.candidates(ctx, labels, want)
	if err != nil {
		return 0, err
	}
	var missing []records.ID
	seen := map[records.ID]bool{}
	for _, id := range candidates {
		if seen[id] || id.ClusterID() != a.cfg.ClusterID {
			continue
		}
		seen[id] = true
		key := a.keys.Identity(id)
		kv, err := a.client.Get(ctx, key)
		if errors.Is(err, kvstore.ErrNotFound) {
			missing = append(missing, id)
			continue
		}
		if err != nil {
			return 0, fmt.Errorf("read master key %s: %w", key, err)
		}
		if m, err := a.keys.DecodeIdentity(key, kv.Value); err != nil || !m.Labels.Equal(labels) {
			continue
		}
		ok, err := a.writeRef(ctx, tx, labels, id, kv.Revision)
		if err != nil || !ok {
			return 0, errors.Join(err, kvstore.ErrConflict)
		}
		return id, nil
	}
	refsSame := kvstore.NothingNewerUnder(a.keys.IdentityRefsOf(labels), newest)
	for _, id := range missing {
		// A reference outlived its master key: re-create it, keeping the id.
		ok, err := a.createMaster(ctx, tx, labels, id, refsSame)
		if err != nil || ok {
			if ok {
				a.log.Info("re-created missing identity master key", "id", id, "labels", labels.String())
			}
			return id, err
		}
	}
	return a.createTxn(ctx, tx, labels, refsSame)
}

// writeRef writes this node's leased reference to id while id's master key
// is still at rev. false: it changed (or vanished) meanwhile.
func (a *Allocator) writeRef(ctx context.Context, tx kvstore.Transactor, labels records.Labels, id records.ID, rev uint64) (bool, error) {
	ref, err := a.refOp(labels, id)
	if err != nil {
		return false, err
	}
	_, err = tx.Txn(ctx, []kvstore.Compare{kvstore.AtRevision(a.keys.Identity(id), rev)}, []kvstore.Op{ref})
	if errors.Is(err, kvstore.ErrConflict) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("write reference to identity %d: %w", id, err)
	}
	return true, nil
}

// createTxn creates a master key with a free id together with this node's
// reference, while refs holds. errRefsChanged: it did not.
func (a *Allocator) createTxn(ctx context.Context, tx kvstore.Transactor, labels records.Labels, refs kvstore.Compare) (records.ID, error) {
	return a.eachFreeID(func(id records.ID) (bool, error) {
		return a.createMaster(ctx, tx, labels, id, refs)
	})
}

// createMaster creates id's master key for labels and this node's reference
// in one transaction, while the master key is absent and refs holds. false:
// the id is taken; errRefsChanged: refs did not hold.
func (a *Allocator) createMaster(ctx context.Context, tx kvstore.Transactor, labels records.Labels, id records.ID, refs kvstore.Compare) (bool, error) {
	key := a.keys.Identity(id)
	val, err := records.Encode(key, &records.Identity{ID: id, Labels: labels})
	if err != nil {
		return false, err
	}
	ref, err := a.refOp(labels, id)
	if err != nil {
		return false, err
	}
	rev, err := tx.Txn(ctx, []kvstore.Compare{kvstore.Absent(key), refs}, []kvstore.Op{kvstore.Put(key, val), ref})
	if err == nil {
		a.cache.put(id, labels, rev)
		return true, nil
	}
	if !errors.Is(err, kvstore.ErrConflict) {
		return false, fmt.Errorf("create master key %s: %w", key, err)
	}
	// Which compare failed? A taken id moves on to the next one.
	if _, gerr := a.client.Get(ctx, key); gerr == nil {
		return false, nil
	} else if !errors.Is(gerr, kvstore.ErrNotFound) {
		return false, fmt.Errorf("read master key %s: %w", key, gerr)
	}
	return false, errRefsChanged
}

// refOp is the write of this node's leased reference to id.
func (a *Allocator) refOp(labels records.Labels, id records.ID) (kvstore.Op, error) {
	key := a.keys.IdentityRef(labels, a.cfg.Node)
	val, err := records.Encode(key, &records.IdentityRef{ID: id})
	if err != nil {
		return kvstore.Op{}, err
	}
	return kvstore.Put(key, val, kvstore.Leased()), nil
}

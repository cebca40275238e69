package identity

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/weftnet/weft/kvstore"
	"github.com/weftnet/weft/state/records"
)

// Allocator hands out identities for one node. It is safe for concurrent
// use; Run must be running for Allocate to proceed.
type Allocator struct {
	client kvstore.Client
	keys   records.Keys
	cfg    Config
	log    *slog.Logger
	cache  *cache
	local  kvstore.KeyedMutex // serialises work on one label set in this process
	lost   <-chan struct{}    // the lease-loss channel current when New ran
	// tx, when the store's transactions compare prefixes (etcd), makes
	// allocation lock-free (acquireTxn); else the label set's lock is used.
	tx kvstore.Transactor

	mu   sync.Mutex
	held map[string]*held // by Labels.String()
}

type held struct {
	labels records.Labels
	id     records.ID
	refs   int
}

// New returns an allocator for cfg.Node using client.
func New(client kvstore.Client, cfg Config, log *slog.Logger) (*Allocator, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	keys := records.NewKeys(client.Prefix())
	tx, ok := client.(kvstore.Transactor)
	if ok && !tx.ComparesPrefixes() {
		tx = nil
	}
	return &Allocator{
		tx:     tx,
		client: client,
		keys:   keys,
		cfg:    cfg,
		log:    log.With("component", "identity-allocator", "cluster", cfg.Cluster, "node", cfg.Node),
		cache:  newCache(keys),
		lost:   client.LeaseLost(),
		held:   map[string]*held{},
	}, nil
}

// Allocate returns the identity of labels and takes one local reference to
// it; the node's reference key exists in the store when it returns.
func (a *Allocator) Allocate(ctx context.Context, labels records.Labels) (records.ID, error) {
	if err := labels.Validate(); err != nil {
		return 0, fmt.Errorf("allocate identity: %w", err)
	}
	if id, ok := records.ReservedID(labels); ok {
		return id, nil
	}
	if err := a.cache.waitSynced(ctx); err != nil {
		return 0, fmt.Errorf("allocate identity for %s: wait for identities to be listed: %w", labels, err)
	}
	name := labels.String()
	unlock, err := a.local.Lock(ctx, name)
	if err != nil {
		return 0, fmt.Errorf("allocate identity for %s: %w", name, err)
	}
	defer unlock()
	a.mu.Lock()
	if h := a.held[name]; h != nil {
		h.refs++
		a.mu.Unlock()
		return h.id, nil
	}
	a.mu.Unlock()
	id, err := a.acquireLeased(ctx, labels, 0)
	if err != nil {
		return 0, fmt.Errorf("allocate identity for %s: %w", name, err)
	}
	a.mu.Lock()
	a.held[name] = &held{labels: labels, id: id, refs: 1}
	a.mu.Unlock()
	return id, nil
}

// Release drops one local reference; the last one deletes the node's
// reference key. It reports whether that happened.
func (a *Allocator) Release(ctx context.Context, labels records.Labels) (bool, error) {
	if _, ok := records.ReservedID(labels); ok {
		return false, nil
	}
	name := labels.String()
	unlock, err := a.local.Lock(ctx, name)
	if err != nil {
		return false, fmt.Errorf("release identity of %s: %w", name, err)
	}
	defer unlock()
	a.mu.Lock()
	h := a.held[name]
	if h == nil {
		a.mu.Unlock()
		return false, fmt.Errorf("release identity of %s: not allocated by node %s", name, a.cfg.Node)
	}
	if h.refs > 1 {
		h.refs--
		a.mu.Unlock()
		return false, nil
	}
	a.mu.Unlock()
	key := a.keys.IdentityRef(labels, a.cfg.Node)
	if err := a.client.Delete(ctx, key); err != nil {
		return false, fmt.Errorf("release identity %d: delete %s: %w", h.id, key, err)
	}
	a.mu.Lock()
	delete(a.held, name)
	a.mu.Unlock()
	return true, nil
}

// Lookup returns the labels of an identity as last seen in the store.
func (a *Allocator) Lookup(id records.ID) (records.Labels, bool) {
	if l, ok := records.ReservedLabels(id); ok {
		return l, true
	}
	return a.cache.labelsOf(id)
}

// lockName is the distributed lock of one label set.
func lockName(keys records.Keys, labels records.Labels) string {
	sum := sha256.Sum256([]byte(labels.String()))
	return keys.Prefix() + "identities/v1/" + hex.EncodeToString(sum[:16])
}

// maxAttempts bounds how often one allocation starts over after a store
// error (a lock lost with its lease, a lease that expired server-side, an
// unreachable store).
const maxAttempts = 5

// acquireLeased runs acquire until the reference was written under a lease
// that was not lost meanwhile (else Run might have missed it). A store
// error starts over with backoff (every step is idempotent); exhaustion,
// invalid input and ctx ending do not.
func (a *Allocator) acquireLeased(ctx context.Context, labels records.Labels, want records.ID) (records.ID, error) {
	bo := kvstore.NewBackoff(50*time.Millisecond, time.Second)
	for attempt := 1; ; attempt++ {
		lost := a.client.LeaseLost()
		id, err := a.acquire(ctx, labels, want)
		if err != nil && attempt < maxAttempts && ctx.Err() == nil && retryable(err) {
			a.log.Warn("identity allocation failed; starting over", "labels", labels.String(), "attempt", attempt, "err", err)
			bo.Wait(ctx)
			continue
		}
		if err != nil {
			return 0, err
		}
		select {
		case <-lost:
			want = id
			continue
		default:
			return id, nil
		}
	}
}

func retryable(err error) bool {
	return !errors.Is(err, ErrExhausted) && !errors.Is(err, records.ErrInvalid) &&
		!errors.Is(err, kvstore.ErrClosed) && !errors.Is(err, kvstore.ErrOutsidePrefix) &&
		!errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded)
}

// acquire finds or creates the identity of labels and writes this node's
// leased reference: in conditional transactions when the store has them
// (acquireTxn), else under the label set's lock. want, if non-zero, is the
// identity to keep (re-creating its master key after a loss).
func (a *Allocator) acquire(ctx context.Context, labels records.Labels, want records.ID) (records.ID, error) {
	if a.tx != nil {
		return a.acquireTxn(ctx, a.tx, labels, want)
	}
	lock, err := a.client.Lock(ctx, lockName(a.keys, labels))
	if err != nil {
		return 0, err
	}
	defer func() {
		if err := lock.Unlock(context.WithoutCancel(ctx)); err != nil {
			a.log.Warn("unlock identity lock", "labels", labels.String(), "err", err)
		}
	}()
	guard := kvstore.Guarded(lock)
	id, err := a.existing(ctx, labels, want, guard)
	if err != nil {
		return 0, err
	}
	if id == 0 {
		if id, err = a.create(ctx, labels, guard); err != nil {
			return 0, err
		}
	}
	key := a.keys.IdentityRef(labels, a.cfg.Node)
	val, err := records.Encode(key, &records.IdentityRef{ID: id})
	if err != nil {
		return 0, err
	}
	if _, err := a.client.Update(ctx, key, val, kvstore.Leased(), guard); err != nil {
		return 0, fmt.Errorf("write reference %s: %w", key, err)
	}
	return id, nil
}

// existing returns the identity that references or a master key already
// give labels, re-creating its master key if it vanished; 0 if none.
func (a *Allocator) existing(ctx context.Context, labels records.Labels, want records.ID, guard kvstore.WriteOption) (records.ID, error) {
	candidates, _, err := a.candidates(ctx, labels, want)
	if err != nil {
		return 0, err
	}
	for _, id := range candidates {
		if id.ClusterID() != a.cfg.ClusterID {
			continue
		}
		ok, err := a.ensureMaster(ctx, id, labels, guard)
		if err != nil {
			return 0, err
		}
		if ok {
			return id, nil
		}
	}
	return 0, nil
}

// ensureMaster reports whether id's master key holds labels, creating it if
// it is missing (a reference outlived it). A master key of other labels
// reports false.
func (a *Allocator) ensureMaster(ctx context.Context, id records.ID, labels records.Labels, guard kvstore.WriteOption) (bool, error) {
	key := a.keys.Identity(id)
	kv, err := a.client.Get(ctx, key)
	switch {
	case err == nil:
		m, derr := a.keys.DecodeIdentity(key, kv.Value)
		return derr == nil && m.Labels.Equal(labels), nil
	case !errors.Is(err, kvstore.ErrNotFound):
		return false, fmt.Errorf("read master key %s: %w", key, err)
	}
	ok, err := a.createGuarded(ctx, id, labels, guard)
	if ok {
		a.log.Info("re-created missing identity master key", "id", id, "labels", labels.String())
	}
	return ok, err
}

// candidates lists the label set's references and returns the ids that
// may be its identity, in order of preference: want, the ids references
// point at, the cache's; and the newest reference's revision (0: none).
func (a *Allocator) candidates(ctx context.Context, labels records.Labels, want records.ID) ([]records.ID, uint64, error) {
	prefix := a.keys.IdentityRefsOf(labels)
	refs, err := a.client.List(ctx, prefix)
	if err != nil {
		return nil, 0, fmt.Errorf("list references %s: %w", prefix, err)
	}
	var newest uint64
	candidates := []records.ID{}
	if want != 0 {
		candidates = append(candidates, want)
	}
	for _, kv := range refs {
		newest = max(newest, kv.Revision)
		r, err := a.keys.DecodeIdentityRef(kv.Key, kv.Value)
		if err != nil {
			a.log.Warn("ignore malformed identity reference", "err", err)
			continue
		}
		candidates = append(candidates, r.ID)
	}
	if id, ok := a.cache.idOf(labels); ok {
		candidates = append(candidates, id)
	}
	return candidates, newest, nil
}

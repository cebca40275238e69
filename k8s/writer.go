package k8s

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"

	"golang.org/x/time/rate"

	"github.com/weftnet/weft/kvstore"
)

// Source of the records this package writes (records.*.Source).
const SourceKubernetes = "kubernetes"

// writer writes one store prefix's records, remembering what the store
// holds so that unchanged records are not written again.
type writer struct {
	store   kvstore.Client
	limiter *rate.Limiter
	prefix  string
	// owned tells whether a stored value was written by this source (only
	// those are pruned).
	owned func(value []byte) bool

	mu   sync.Mutex
	have map[string][]byte // key → value in the store, owned records only
}

func newWriter(store kvstore.Client, limiter *rate.Limiter, prefix string) *writer {
	return &writer{store: store, limiter: limiter, prefix: prefix, owned: ownedBySource, have: map[string][]byte{}}
}

// ownedBySource reports whether a record's source is this package.
func ownedBySource(value []byte) bool {
	var r struct {
		Source string `json:"source"`
	}
	return json.Unmarshal(value, &r) == nil && r.Source == SourceKubernetes
}

// load reads what the store holds under the prefix.
func (w *writer) load(ctx context.Context) error {
	kvs, err := w.store.List(ctx, w.prefix)
	if err != nil {
		return fmt.Errorf("list %s: %w", w.prefix, err)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.have = map[string][]byte{}
	for _, kv := range kvs {
		if w.owned(kv.Value) {
			w.have[kv.Key] = kv.Value
		}
	}
	return nil
}

// put writes value under key unless the store already holds it.
func (w *writer) put(ctx context.Context, key string, value []byte) error {
	w.mu.Lock()
	same := bytes.Equal(w.have[key], value)
	w.mu.Unlock()
	if same {
		return nil
	}
	if err := w.limiter.Wait(ctx); err != nil {
		return err
	}
	if _, err := w.store.Update(ctx, key, value); err != nil {
		return fmt.Errorf("write %s: %w", key, err)
	}
	w.mu.Lock()
	w.have[key] = value
	w.mu.Unlock()
	return nil
}

// remove deletes key if this source wrote it.
func (w *writer) remove(ctx context.Context, key string) error {
	w.mu.Lock()
	_, ok := w.have[key]
	w.mu.Unlock()
	if !ok {
		return nil
	}
	if err := w.limiter.Wait(ctx); err != nil {
		return err
	}
	if err := w.store.Delete(ctx, key); err != nil && !errors.Is(err, kvstore.ErrNotFound) {
		return fmt.Errorf("delete %s: %w", key, err)
	}
	w.mu.Lock()
	delete(w.have, key)
	w.mu.Unlock()
	return nil
}

// prune deletes every owned record whose key keep does not hold.
func (w *writer) prune(ctx context.Context, keep map[string]bool) error {
	w.mu.Lock()
	var stale []string
	for k := range w.have {
		if !keep[k] && strings.HasPrefix(k, w.prefix) {
			stale = append(stale, k)
		}
	}
	w.mu.Unlock()
	var errs []error
	for _, k := range stale {
		if err := w.remove(ctx, k); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// count is how many owned records the store holds under the prefix.
func (w *writer) count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.have)
}

package identity

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/weftnet/weft/kvstore"
	"github.com/weftnet/weft/state/internal/memstore"
	"github.com/weftnet/weft/state/records"
	"github.com/weftnet/weft/state/statetest"
)

func newAllocator(t testing.TB, c kvstore.Client, clusterID uint32, node string, mod ...func(*Config)) *Allocator {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Cluster, cfg.ClusterID, cfg.Node = fmt.Sprintf("c%d", clusterID), clusterID, node
	for _, m := range mod {
		m(&cfg)
	}
	a, err := New(c, cfg, statetest.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	statetest.Go(t, a.Run)
	return a
}

func labelSet(i int) records.Labels {
	return records.MustParseLabels(fmt.Sprintf("k8s:app=app-%d", i), fmt.Sprintf("k8s:io.kubernetes.pod.namespace=ns-%d", i%7))
}

// TestAllocatorLogic covers local semantics on an in-memory store: reserved
// label sets, refcounts, release on last use, exhaustion.
func TestAllocatorLogic(t *testing.T) {
	ctx := statetest.Context(t, time.Minute)
	store := memstore.New()
	c := store.NewClient("")
	keys := records.NewKeys(c.Prefix())
	a := newAllocator(t, c, 3, "n1", func(cfg *Config) { cfg.MinLocal, cfg.MaxLocal = 256, 258 })

	t.Run("reserved", func(t *testing.T) {
		id, err := a.Allocate(ctx, records.MustParseLabels("reserved:host"))
		if err != nil || id != records.IDHost {
			t.Fatalf("Allocate(reserved:host) = %v, %v; want %d", id, err, records.IDHost)
		}
	})
	t.Run("refcount", func(t *testing.T) {
		l := labelSet(1)
		id1, err := a.Allocate(ctx, l)
		if err != nil {
			t.Fatal(err)
		}
		id2, err := a.Allocate(ctx, l)
		if err != nil || id2 != id1 || id1.ClusterID() != 3 {
			t.Fatalf("second Allocate = %v, %v; want %v in cluster 3", id2, err, id1)
		}
		if gone, err := a.Release(ctx, l); err != nil || gone {
			t.Fatalf("first Release = %v, %v; want reference kept", gone, err)
		}
		if _, err := c.Get(ctx, keys.IdentityRef(l, "n1")); err != nil {
			t.Fatalf("reference vanished while still used: %v", err)
		}
		if gone, err := a.Release(ctx, l); err != nil || !gone {
			t.Fatalf("last Release = %v, %v; want reference deleted", gone, err)
		}
		if _, err := c.Get(ctx, keys.IdentityRef(l, "n1")); !errors.Is(err, kvstore.ErrNotFound) {
			t.Fatalf("reference after last release: %v, want ErrNotFound", err)
		}
		if _, err := c.Get(ctx, keys.Identity(id1)); err != nil {
			t.Fatalf("master key must stay until collected: %v", err)
		}
	})
	t.Run("exhausted", func(t *testing.T) {
		for i := 10; i < 12; i++ {
			if _, err := a.Allocate(ctx, labelSet(i)); err != nil {
				t.Fatalf("Allocate %d: %v", i, err)
			}
		}
		_, err := a.Allocate(ctx, labelSet(99))
		if !errors.Is(err, ErrExhausted) {
			t.Fatalf("Allocate beyond the range: %v, want ErrExhausted", err)
		}
	})
	t.Run("lease lost", func(t *testing.T) {
		l := labelSet(10)
		c.ExpireLease()
		statetest.Eventually(t, 10*time.Second, "reference re-created under the new lease", func() error {
			_, err := c.Get(ctx, keys.IdentityRef(l, "n1"))
			return err
		})
	})
}

package identity

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/weftnet/weft/kvstore"
	"github.com/weftnet/weft/kvstore/kvstoretest"
	"github.com/weftnet/weft/state/records"
	"github.com/weftnet/weft/state/statetest"
)

// TestRacingAllocatorsConverge: two allocators on two nodes create each of
// 300 new label sets at the same moment, in a range barely larger than the
// sets, so that they race both for the label set and for free ids. Every
// label set ends with one id that both got, one master key, and references
// that all point at it.
func TestRacingAllocatorsConverge(t *testing.T) {
	statetest.Each(t, func(t *testing.T, s kvstoretest.Server) {
		const sets = 300
		ctx := statetest.Context(t, 3*time.Minute)
		keys := records.NewKeys(s.Config().Prefix)
		small := func(c *Config) { c.MinLocal, c.MaxLocal = 256, 256+sets+sets/4 }
		allocs := []*Allocator{
			newAllocator(t, s.NewClient(t, statetest.Unlimited, statetest.LongLease), 1, "race-a", small),
			newAllocator(t, s.NewClient(t, statetest.Unlimited, statetest.LongLease), 1, "race-b", small),
		}
		got := make([][2]records.ID, sets)
		for j := range sets {
			start := make(chan struct{})
			g, gctx := errgroup.WithContext(ctx)
			for i, a := range allocs {
				g.Go(func() error {
					<-start
					id, err := a.Allocate(gctx, labelSet(j))
					got[j][i] = id
					return err
				})
			}
			close(start)
			if err := g.Wait(); err != nil {
				t.Fatalf("label set %d: %v", j, err)
			}
			if got[j][0] != got[j][1] {
				t.Fatalf("label set %d: allocator a got %d, b got %d", j, got[j][0], got[j][1])
			}
		}
		reader := s.NewClient(t)
		byID := map[records.ID]int{}
		for j := range sets {
			if other, dup := byID[got[j][0]]; dup {
				t.Fatalf("label sets %d and %d share identity %d", other, j, got[j][0])
			}
			byID[got[j][0]] = j
		}
		masters := mustList(t, reader, keys.IdentitiesPrefix())
		if len(masters) != sets {
			t.Fatalf("%d master keys, want one per label set (%d)", len(masters), sets)
		}
		for _, kv := range masters {
			m, err := keys.DecodeIdentity(kv.Key, kv.Value)
			if err != nil {
				t.Fatal(err)
			}
			if j, ok := byID[m.ID]; !ok || !m.Labels.Equal(labelSet(j)) {
				t.Fatalf("master key %s holds %s, not the label set its id was handed out for", kv.Key, m.Labels)
			}
		}
		checkRefs(t, reader, keys, byID, 2*sets)
	})
}

// TestCollectorRacesReallocation: 200 label sets lose their last reference
// and are collected (grace 1 ms, back-to-back passes) while another node
// allocates them again, so the collector's deletes and the allocator's
// reference writes interleave. Whichever wins, every identity the node
// holds ends with its master key holding its labels and the node's
// reference pointing at it: the collector never deletes a master key that
// a fresh reference uses.
func TestCollectorRacesReallocation(t *testing.T) {
	statetest.Each(t, func(t *testing.T, s kvstoretest.Server) {
		const sets = 200
		ctx := statetest.Context(t, 3*time.Minute)
		keys := records.NewKeys(s.Config().Prefix)
		first := newAllocator(t, s.NewClient(t, statetest.Unlimited, statetest.LongLease), 1, "first")
		for j := range sets {
			if _, err := first.Allocate(ctx, labelSet(j)); err != nil {
				t.Fatal(err)
			}
		}
		second := newAllocator(t, s.NewClient(t, statetest.Unlimited, statetest.LongLease), 1, "second")
		statetest.Eventually(t, 30*time.Second, "second allocator sees every master key", func() error {
			for j := range sets {
				if _, ok := second.cache.idOf(labelSet(j)); !ok {
					return fmt.Errorf("label set %d not seen yet", j)
				}
			}
			return nil
		})
		for j := range sets {
			if _, err := first.Release(ctx, labelSet(j)); err != nil {
				t.Fatal(err)
			}
		}
		col, err := NewCollector(s.NewClient(t, statetest.Unlimited), CollectorConfig{ClusterID: 1, Grace: time.Millisecond, Interval: time.Millisecond}, statetest.Logger(t))
		if err != nil {
			t.Fatal(err)
		}
		cctx, stop := context.WithCancel(ctx)
		var wg sync.WaitGroup
		var collected int
		wg.Add(1)
		go func() {
			defer wg.Done()
			for cctx.Err() == nil {
				deleted, err := col.Collect(cctx)
				if err != nil && cctx.Err() == nil {
					t.Errorf("collect: %v", err)
					return
				}
				collected += len(deleted)
			}
		}()
		// Let the collector's first pass mark every set unreferenced.
		time.Sleep(50 * time.Millisecond)
		byID := map[records.ID]int{}
		for j := range sets {
			id, err := second.Allocate(ctx, labelSet(j))
			if err != nil {
				t.Fatal(err)
			}
			if other, dup := byID[id]; dup {
				t.Fatalf("label sets %d and %d share identity %d", other, j, id)
			}
			byID[id] = j
		}
		stop()
		wg.Wait()
		if collected == 0 {
			t.Fatalf("the collector deleted nothing while the sets were allocated again: the race was not exercised")
		}
		t.Logf("the collector deleted %d master keys during the run", collected)
		reader := s.NewClient(t)
		for id, j := range byID {
			kv, err := reader.Get(ctx, keys.Identity(id))
			if err != nil {
				t.Fatalf("identity %d held by node second for label set %d: master key: %v", id, j, err)
			}
			if m, err := keys.DecodeIdentity(kv.Key, kv.Value); err != nil || !m.Labels.Equal(labelSet(j)) {
				t.Fatalf("master key of identity %d holds %+v (%v), want label set %d", id, m, err, j)
			}
		}
		checkRefs(t, reader, keys, byID, sets)
	})
}

// checkRefs asserts that there are want references and each points at the
// identity of its label set.
func checkRefs(t *testing.T, c kvstore.Client, keys records.Keys, byID map[records.ID]int, want int) {
	t.Helper()
	refs := mustList(t, c, keys.IdentityRefsPrefix())
	if len(refs) != want {
		t.Fatalf("%d references, want %d", len(refs), want)
	}
	for _, kv := range refs {
		r, err := keys.DecodeIdentityRef(kv.Key, kv.Value)
		if err != nil {
			t.Fatal(err)
		}
		j, ok := byID[r.ID]
		if !ok || !strings.HasPrefix(kv.Key, keys.IdentityRefsOf(labelSet(j))) {
			t.Fatalf("reference %s points at identity %d, which is not its label set's", kv.Key, r.ID)
		}
	}
}

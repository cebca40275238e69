package identity

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"net/url"
	"sync"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/weftnet/weft/internal/testgate"
	"github.com/weftnet/weft/kvstore"
	"github.com/weftnet/weft/kvstore/kvstoretest"
	"github.com/weftnet/weft/state/records"
	"github.com/weftnet/weft/state/statetest"
)

// TestAllocatorsAgree: 10 allocators on 10 nodes allocate the same 500 label
// sets at once, each in its own order. Every label set gets exactly one id,
// all allocators agree, ids are distinct and in the cluster's range. Then one
// allocator's node dies (its connection is cut, so its session expires
// rather than being revoked): its references vanish within the TTL, and the
// collector reclaims the ids only it used, never the ids others still
// reference nor another cluster's unreferenced ids.
func TestAllocatorsAgree(t *testing.T) {
	testgate.Short(t) // about a minute per backend on 2 busy cores
	statetest.Each(t, func(t *testing.T, s kvstoretest.Server) {
		const allocators, sets, workers = 10, 500, 4
		const clusterID = 1
		ctx := statetest.Context(t, 3*time.Minute)
		keys := records.NewKeys(s.Config().Prefix)

		// The last allocator talks through a proxy so that its death can be simulated.
		proxy := kvstoretest.NewProxy(t, hostPort(t, s.Config().Endpoints[0]))
		allocs := make([]*Allocator, allocators)
		for i := range allocators {
			// A 10 s lease at least: a busy machine must not expire leases
			// (and the locks on them) while the allocators work.
			mods := []func(*kvstore.Config){statetest.Unlimited, statetest.LongLease}
			if i == allocators-1 { // keeps the server's short TTL: its death is awaited below
				mods = []func(*kvstore.Config){statetest.Unlimited, func(c *kvstore.Config) { c.Endpoints = []string{"http://" + proxy.Addr()} }}
			}
			allocs[i] = newAllocator(t, s.NewClient(t, mods...), clusterID, fmt.Sprintf("node-%d", i))
		}

		ids := make([][]records.ID, allocators)
		g, gctx := errgroup.WithContext(ctx)
		for i, a := range allocs {
			ids[i] = make([]records.ID, sets)
			order := rand.Perm(sets)
			var next sync.Mutex
			for range workers {
				g.Go(func() error {
					for {
						next.Lock()
						if len(order) == 0 {
							next.Unlock()
							return nil
						}
						j := order[0]
						order = order[1:]
						next.Unlock()
						id, err := a.Allocate(gctx, labelSet(j))
						if err != nil {
							return fmt.Errorf("allocator %d, set %d: %w", i, j, err)
						}
						ids[i][j] = id
					}
				})
			}
		}
		if err := g.Wait(); err != nil {
			t.Fatal(err)
		}
		seen := map[records.ID]int{}
		for j := range sets {
			for i := range allocators {
				if ids[i][j] != ids[0][j] {
					t.Fatalf("label set %d: allocator %d got %d, allocator 0 got %d", j, i, ids[i][j], ids[0][j])
				}
			}
			if other, dup := seen[ids[0][j]]; dup {
				t.Fatalf("label sets %d and %d share identity %d", other, j, ids[0][j])
			}
			if ids[0][j].ClusterID() != clusterID {
				t.Fatalf("identity %d outside cluster %d's range", ids[0][j], clusterID)
			}
			seen[ids[0][j]] = j
		}
		reader := s.NewClient(t)
		masters := mustList(t, reader, keys.IdentitiesPrefix())
		if len(masters) != sets {
			t.Fatalf("%d master keys in the store, want %d", len(masters), sets)
		}
		for _, kv := range masters {
			m, err := keys.DecodeIdentity(kv.Key, kv.Value)
			if err != nil {
				t.Fatal(err)
			}
			if j, ok := seen[m.ID]; !ok || !m.Labels.Equal(labelSet(j)) {
				t.Fatalf("master key %s holds %s, not the label set its id was handed out for", kv.Key, m.Labels)
			}
		}
		if refs := mustList(t, reader, keys.IdentityRefsPrefix()); len(refs) != allocators*sets {
			t.Fatalf("%d references, want %d", len(refs), allocators*sets)
		}

		// The dying node alone also uses 20 more label sets.
		dying := allocs[allocators-1]
		var own []records.ID
		for j := sets; j < sets+20; j++ {
			id, err := dying.Allocate(ctx, labelSet(j))
			if err != nil {
				t.Fatal(err)
			}
			own = append(own, id)
		}
		// Another cluster's identity, unreferenced: not ours to collect.
		foreign := newAllocator(t, s.NewClient(t), 2, "remote-node")
		fl := records.MustParseLabels("k8s:app=foreign")
		fid, err := foreign.Allocate(ctx, fl)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := foreign.Release(ctx, fl); err != nil {
			t.Fatal(err)
		}

		proxy.Cut()
		statetest.Eventually(t, statetest.LeaseDeadline(s), "dead node's references vanish", func() error {
			refs := mustList(t, reader, keys.IdentityRefsPrefix())
			for _, kv := range refs {
				if _, node, _ := keys.ParseIdentityRefKey(kv.Key); node == "node-9" {
					return fmt.Errorf("reference %s still present", kv.Key)
				}
			}
			return nil
		})

		col, err := NewCollector(reader, CollectorConfig{ClusterID: clusterID, Grace: 200 * time.Millisecond, Interval: 50 * time.Millisecond}, statetest.Logger(t))
		if err != nil {
			t.Fatal(err)
		}
		statetest.Eventually(t, 30*time.Second, "collector reclaims the dead node's identities", func() error {
			if _, err := col.Collect(ctx); err != nil {
				return err
			}
			for _, id := range own {
				if _, err := reader.Get(ctx, keys.Identity(id)); err == nil {
					return fmt.Errorf("identity %d still present", id)
				}
			}
			return nil
		})
		if n := len(mustList(t, reader, keys.IdentitiesPrefix())); n != sets+1 {
			t.Fatalf("%d master keys after collection, want the %d still referenced plus the foreign one", n, sets)
		}
		if _, err := reader.Get(ctx, keys.Identity(fid)); err != nil {
			t.Fatalf("collector of cluster %d touched cluster 2's identity %d: %v", clusterID, fid, err)
		}
	})
}

func mustList(t testing.TB, c kvstore.Client, prefix string) []kvstore.KeyValue {
	t.Helper()
	kvs, err := c.List(context.Background(), prefix)
	if err != nil {
		t.Fatalf("list %s: %v", prefix, err)
	}
	return kvs
}

func hostPort(t testing.TB, endpoint string) string {
	t.Helper()
	u, err := url.Parse(endpoint)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := net.SplitHostPort(u.Host); err != nil {
		t.Fatalf("endpoint %s: %v", endpoint, err)
	}
	return u.Host
}

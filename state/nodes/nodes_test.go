package nodes

import (
	"errors"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/weftnet/weft/kvstore"
	"github.com/weftnet/weft/kvstore/kvstoretest"
	"github.com/weftnet/weft/state/podcidr"
	"github.com/weftnet/weft/state/records"
	"github.com/weftnet/weft/state/statetest"
	"github.com/weftnet/weft/state/syncstore"
)

// TestNodeLifecycle: an agent takes a pod CIDR, registers its node record
// (lease-bound) and every watcher sees it; when the agent dies the record
// vanishes but the CIDR stays; the restarted agent gets the same CIDR;
// deleting the node for good frees the CIDR.
func TestNodeLifecycle(t *testing.T) {
	statetest.Each(t, func(t *testing.T, s kvstoretest.Server) {
		ctx := statetest.Context(t, 2*time.Minute)
		admin := s.NewClient(t)
		keys := records.NewKeys(admin.Prefix())
		cfg := podcidr.DefaultConfig()
		cfg.Cluster = "c1"
		w, err := NewWatcher(admin, "c1", nil, statetest.Logger(t))
		if err != nil {
			t.Fatal(err)
		}
		statetest.Go(t, w.Run)

		start := func(c kvstore.Client) netip.Prefix {
			alloc, err := podcidr.New(c, cfg, statetest.Logger(t))
			if err != nil {
				t.Fatal(err)
			}
			cidrs, err := alloc.Acquire(ctx, "node-a")
			if err != nil {
				t.Fatal(err)
			}
			st, err := syncstore.New(c, syncstore.DefaultConfig(), statetest.Logger(t))
			if err != nil {
				t.Fatal(err)
			}
			statetest.Go(t, st.Run)
			n := records.Node{Name: "node-a", Cluster: "c1", ClusterID: 1,
				Underlay: []netip.Addr{netip.MustParseAddr("192.168.0.10")}, PodCIDRs: cidrs}
			if err := NewRegistry(st, c.Prefix()).Register(n); err != nil {
				t.Fatal(err)
			}
			return cidrs[0]
		}
		agent := s.NewClient(t)
		first := start(agent)
		key := keys.Node("c1", "node-a")
		statetest.Eventually(t, 30*time.Second, "watcher sees the node", func() error {
			n, ok := w.Get(key)
			if !ok || len(n.PodCIDRs) != 1 || n.PodCIDRs[0] != first {
				return fmt.Errorf("watcher has %+v", n)
			}
			return nil
		})
		if err := agent.Close(ctx); err != nil {
			t.Fatal(err)
		}
		statetest.Eventually(t, statetest.LeaseDeadline(s), "dead agent's node record vanishes", func() error {
			if _, ok := w.Get(key); ok {
				return errors.New("still present")
			}
			return nil
		})
		if second := start(s.NewClient(t)); second != first {
			t.Fatalf("restarted node got %s, had %s", second, first)
		}
		statetest.Eventually(t, 30*time.Second, "watcher sees the restarted node", func() error {
			if _, ok := w.Get(key); !ok {
				return errors.New("not yet")
			}
			return nil
		})
		alloc, err := podcidr.New(admin, cfg, statetest.Logger(t))
		if err != nil {
			t.Fatal(err)
		}
		freed, err := Delete(ctx, admin, alloc, "c1", "node-a")
		if err != nil || len(freed) != 1 || freed[0] != first {
			t.Fatalf("Delete = %v, %v; want %s freed", freed, err, first)
		}
		if _, err := admin.Get(ctx, keys.IPAM("c1", first)); !errors.Is(err, kvstore.ErrNotFound) {
			t.Fatalf("CIDR %s still allocated after the node was deleted: %v", first, err)
		}
	})
}

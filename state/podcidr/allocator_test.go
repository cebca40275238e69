package podcidr

import (
	"errors"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/weftnet/weft/kvstore"
	"github.com/weftnet/weft/kvstore/kvstoretest"
	"github.com/weftnet/weft/state/statetest"
)

func newAllocator(t testing.TB, c kvstore.Client, cfg Config) *Allocator {
	t.Helper()
	a, err := New(c, cfg, statetest.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// TestNodesRaceForCIDRs: 20 nodes, each with its own client, take pod CIDRs
// at once and get distinct ones from the pool; a node that restarts gets its
// CIDR back; a deleted node's CIDR is free for the next node; a full pool
// says so.
func TestNodesRaceForCIDRs(t *testing.T) {
	statetest.Each(t, func(t *testing.T, s kvstoretest.Server) {
		const nodes = 20
		ctx := statetest.Context(t, 2*time.Minute)
		cfg := DefaultConfig()
		cfg.Cluster = "c1"
		cfg.Pool = []netip.Prefix{netip.MustParsePrefix("10.100.0.0/16"), netip.MustParsePrefix("fd00:10::/48")}

		got := make([][]netip.Prefix, nodes)
		var g errgroup.Group
		for i := range nodes {
			a := newAllocator(t, s.NewClient(t), cfg)
			g.Go(func() error {
				var err error
				got[i], err = a.Acquire(ctx, fmt.Sprintf("node-%d", i))
				return err
			})
		}
		if err := g.Wait(); err != nil {
			t.Fatal(err)
		}
		owner := map[netip.Prefix]int{}
		for i, cidrs := range got {
			if len(cidrs) != 2 || !cidrs[0].Addr().Is4() || cidrs[0].Bits() != 24 || !cidrs[1].Addr().Is6() || cidrs[1].Bits() != 64 {
				t.Fatalf("node-%d got %v, want one /24 and one /64", i, cidrs)
			}
			for _, c := range cidrs {
				if j, dup := owner[c]; dup {
					t.Fatalf("node-%d and node-%d both got %s", j, i, c)
				}
				owner[c] = i
			}
		}

		restarted := newAllocator(t, s.NewClient(t), cfg)
		again, err := restarted.Acquire(ctx, "node-7")
		if err != nil || len(again) != 2 || again[0] != got[7][0] || again[1] != got[7][1] {
			t.Fatalf("node-7 after restart got %v, %v; want %v", again, err, got[7])
		}

		freed, err := restarted.Free(ctx, "node-3")
		if err != nil || len(freed) != 2 {
			t.Fatalf("Free(node-3) = %v, %v", freed, err)
		}
		allocs, err := restarted.Allocations(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range got[3] {
			if _, ok := allocs[c]; ok {
				t.Fatalf("%s still allocated after node-3 was freed", c)
			}
		}
		next, err := restarted.Acquire(ctx, "node-new")
		if err != nil || next[0] != got[3][0] {
			t.Fatalf("node-new got %v, %v; want the freed %s (the lowest free subnet)", next, err, got[3][0])
		}

		small := cfg
		small.Cluster = "c2"
		small.Pool = []netip.Prefix{netip.MustParsePrefix("10.200.0.0/28")}
		small.MaskSize = 30
		sa := newAllocator(t, s.NewClient(t), small)
		for i := range 4 {
			if _, err := sa.Acquire(ctx, fmt.Sprintf("n%d", i)); err != nil {
				t.Fatalf("small pool, node %d: %v", i, err)
			}
		}
		if _, err := sa.Acquire(ctx, "n4"); !errors.Is(err, ErrExhausted) {
			t.Fatalf("fifth node on a pool of 4: %v, want ErrExhausted", err)
		}
	})
}

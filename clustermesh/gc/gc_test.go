package gc_test

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/weftnet/weft/clustermesh/gc"
	"github.com/weftnet/weft/kvstore"
	"github.com/weftnet/weft/kvstore/kvstoretest"
	"github.com/weftnet/weft/state/records"
	"github.com/weftnet/weft/state/statetest"
)

func put(t *testing.T, c kvstore.Client, key string, rec records.Record) {
	t.Helper()
	val, err := records.Encode(key, rec)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Update(context.Background(), key, val); err != nil {
		t.Fatal(err)
	}
}

// TestElectedCollector (etcd and Consul): two collectors of a cluster
// without an apiserver (as two agents run them) compete for the lock; the
// holder frees a dead node's pod CIDR and an unreferenced identity after
// their grace periods, keeps the live node's, and records the collection;
// when the holder stops, the other takes over and records itself.
func TestElectedCollector(t *testing.T) {
	statetest.Each(t, testElectedCollector)
}

func testElectedCollector(t *testing.T, s kvstoretest.Server) {
	ctx := statetest.Context(t, 2*time.Minute)
	client := s.NewClient(t)
	k := records.NewKeys(client.Prefix())
	cc := records.ClusterConfig{Name: "c1", ID: 1, PodCIDRs: []netip.Prefix{netip.MustParsePrefix("10.100.0.0/16")}, PodCIDRMaskSize: 24, Routing: records.RoutingTunnel}
	alive, dead := netip.MustParsePrefix("10.100.1.0/24"), netip.MustParsePrefix("10.100.2.0/24")
	put(t, client, k.IPAM("c1", alive), &records.PodCIDR{CIDR: alive, Node: "n1"})
	put(t, client, k.IPAM("c1", dead), &records.PodCIDR{CIDR: dead, Node: "n2"})
	put(t, client, k.Node("c1", "n1"), &records.Node{Name: "n1", Cluster: "c1", ClusterID: 1, Underlay: []netip.Addr{netip.MustParseAddr("192.168.1.1")}})
	orphan := records.ClusterIdentity(1, 300)
	put(t, client, k.Identity(orphan), &records.Identity{ID: orphan, Labels: records.Labels{{Source: "k8s", Key: "app", Value: "gone"}}})

	run := func(name string) (stop func()) {
		cfg := gc.Config{Runner: "agent " + name, Interval: 100 * time.Millisecond, IdentityGrace: 500 * time.Millisecond, NodeGrace: 500 * time.Millisecond}
		col, err := gc.New(s.NewClient(t), cc, cfg, statetest.Logger(t))
		if err != nil {
			t.Fatal(err)
		}
		rctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- col.Run(rctx) }()
		return func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("collector of %s: %v", name, err)
			}
		}
	}
	stopA := run("n1")
	statetest.Eventually(t, time.Minute, "the holder records a collection", func() error {
		_, err := gc.Last(ctx, client, client.Prefix(), "c1")
		return err
	})
	stopB := run("n3")
	defer stopB()
	statetest.Eventually(t, time.Minute, "the dead node's CIDR and the orphan identity are freed", func() error {
		if _, err := client.Get(ctx, k.IPAM("c1", dead)); !errors.Is(err, kvstore.ErrNotFound) {
			return fmt.Errorf("%v of dead n2: %v", dead, err)
		}
		if _, err := client.Get(ctx, k.Identity(orphan)); !errors.Is(err, kvstore.ErrNotFound) {
			return fmt.Errorf("identity %d: %v", orphan, err)
		}
		return nil
	})
	if _, err := client.Get(ctx, k.IPAM("c1", alive)); err != nil {
		t.Fatalf("the live node's CIDR: %v", err)
	}
	// The pass that freed the last of them records it when it ends.
	statetest.Eventually(t, time.Minute, "the collection is recorded", func() error {
		rec, err := gc.Last(ctx, client, client.Prefix(), "c1")
		if err == nil && (rec.By != "agent n1" || rec.Freed.Empty() || len(rec.Freed.CIDRs["n2"]) != 1 || len(rec.Freed.Identities) != 1) {
			err = fmt.Errorf("last collection %+v (freed %+v), want one by agent n1 that freed n2's CIDR and one identity", rec, rec.Freed)
		}
		return err
	})
	stopA()
	statetest.Eventually(t, time.Minute, "the other collector takes over", func() error {
		rec, err := gc.Last(ctx, client, client.Prefix(), "c1")
		if err == nil && rec.By != "agent n3" {
			err = fmt.Errorf("last collection by %q", rec.By)
		}
		return err
	})
}

package apiserver_test

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/weftnet/weft/clustermesh"
	"github.com/weftnet/weft/clustermesh/apiserver/apiservertest"
	"github.com/weftnet/weft/kvstore"
	"github.com/weftnet/weft/kvstore/etcd"
	"github.com/weftnet/weft/kvstore/kvstoretest"
	"github.com/weftnet/weft/state/records"
	"github.com/weftnet/weft/state/statetest"
)

func put(t testing.TB, c kvstore.Client, key string, rec records.Record) {
	t.Helper()
	val, err := records.Encode(key, rec)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Update(context.Background(), key, val); err != nil {
		t.Fatal(err)
	}
}

// served opens a client of the served store with a certificate pair.
func served(t testing.TB, c *apiservertest.Cluster, cert, key string) kvstore.Client {
	t.Helper()
	return servedWith(t, c.ServedConfig(cert, key))
}

func servedWith(t testing.TB, cfg kvstore.Config) kvstore.Client {
	t.Helper()
	cl, err := etcd.New(context.Background(), cfg, statetest.Logger(t))
	if err != nil {
		t.Fatalf("connect to the served store at %v: %v", cfg.Endpoints, err)
	}
	t.Cleanup(func() { cl.Close(context.Background()) })
	return cl
}

// TestMirror (etcd and Consul as the cluster store): the cluster's records appear in the served store, with the
// synced canaries; records outside the cluster's identity range or
// malformed ones do not; deletes propagate; cluster-config is published.
func TestMirror(t *testing.T) {
	statetest.Each(t, func(t *testing.T, s kvstoretest.Server) { testMirror(t, s) })
}

func testMirror(t *testing.T, s kvstoretest.Server) {
	ctx := statetest.Context(t, 2*time.Minute)
	c := apiservertest.Start(t, "c1", 1, apiservertest.Options{Store: s})
	src := c.Store.NewClient(t)
	sk := records.NewKeys(src.Prefix())
	put(t, src, sk.Node("c1", "n1"), &records.Node{Name: "n1", Cluster: "c1", ClusterID: 1, Underlay: []netip.Addr{netip.MustParseAddr("192.168.1.1")}})
	good := records.IPCacheEntry{IP: netip.MustParseAddr("10.100.0.5"), Identity: records.ClusterIdentity(1, 300)}
	bad := records.IPCacheEntry{IP: netip.MustParseAddr("10.100.0.6"), Identity: records.ClusterIdentity(2, 300)}
	put(t, src, sk.IPCache("c1", good.IP), &good)
	put(t, src, sk.IPCache("c1", bad.IP), &bad)
	put(t, src, sk.Identity(records.ClusterIdentity(1, 300)), &records.Identity{ID: records.ClusterIdentity(1, 300), Labels: records.Labels{{Source: "k8s", Key: "app", Value: "web"}}})
	put(t, src, sk.Identity(records.ClusterIdentity(3, 300)), &records.Identity{ID: records.ClusterIdentity(3, 300), Labels: records.Labels{{Source: "k8s", Key: "app", Value: "x"}}})

	root := served(t, c, c.Dir.Cert(clustermesh.UserRoot), c.Dir.Key(clustermesh.UserRoot))
	dk := records.NewKeys(root.Prefix())
	want := map[string]bool{
		dk.ClusterConfig("c1"): true, dk.Node("c1", "n1"): true, dk.IPCache("c1", good.IP): true, dk.IPCache("c1", bad.IP): false,
		dk.Identity(records.ClusterIdentity(1, 300)): true, dk.Identity(records.ClusterIdentity(3, 300)): false,
		dk.Synced("c1", records.KindNodes): true, dk.Synced("c1", records.KindIPCache): true,
		dk.Synced("c1", records.KindIdentities): true, dk.Synced("c1", records.KindServices): true,
	}
	statetest.Eventually(t, time.Minute, "the served store holds the cluster's records", func() error {
		for key, present := range want {
			_, err := root.Get(ctx, key)
			if present && err != nil {
				return fmt.Errorf("get %s: %w", key, err)
			}
			if !present && err == nil {
				return fmt.Errorf("%s was mirrored although it is outside the cluster's range", key)
			}
		}
		return nil
	})
	if err := src.Delete(ctx, sk.IPCache("c1", good.IP)); err != nil {
		t.Fatal(err)
	}
	statetest.Eventually(t, time.Minute, "a deleted entry leaves the served store", func() error {
		if _, err := root.Get(ctx, dk.IPCache("c1", good.IP)); err == nil {
			return fmt.Errorf("%s still served", good.IP)
		}
		return nil
	})
	if _, err := src.Get(ctx, sk.ClusterConfig("c1")); err != nil {
		t.Fatalf("cluster-config/c1 in the cluster store: %v", err)
	}
}

// TestMirrorAfterRestart: entries deleted while the apiserver was down
// leave the served store once it is back; the rest stays served throughout.
func TestMirrorAfterRestart(t *testing.T) {
	ctx := statetest.Context(t, 2*time.Minute)
	c := apiservertest.Start(t, "c1", 1, apiservertest.Options{})
	src := c.Store.NewClient(t)
	sk := records.NewKeys(src.Prefix())
	a := records.IPCacheEntry{IP: netip.MustParseAddr("10.100.0.5"), Identity: records.ClusterIdentity(1, 300)}
	b := records.IPCacheEntry{IP: netip.MustParseAddr("10.100.0.7"), Identity: records.ClusterIdentity(1, 300)}
	put(t, src, sk.IPCache("c1", a.IP), &a)
	put(t, src, sk.IPCache("c1", b.IP), &b)
	check := func(what string, present, absent netip.Addr) {
		statetest.Eventually(t, time.Minute, what, func() error {
			root := served(t, c, c.Dir.Cert(clustermesh.UserRoot), c.Dir.Key(clustermesh.UserRoot))
			defer root.Close(ctx)
			dk := records.NewKeys(root.Prefix())
			if _, err := root.Get(ctx, dk.IPCache("c1", present)); err != nil {
				return err
			}
			if absent.IsValid() {
				if _, err := root.Get(ctx, dk.IPCache("c1", absent)); err == nil {
					return fmt.Errorf("%s still served", absent)
				}
			}
			return nil
		})
	}
	check("both entries served", a.IP, netip.Addr{})
	c.Stop()
	if err := src.Delete(ctx, sk.IPCache("c1", b.IP)); err != nil {
		t.Fatal(err)
	}
	c.Restart(t)
	check("the entry deleted during the outage is gone, the other kept", a.IP, b.IP)
}

// TestMetrics: /metrics serves the apiserver's metrics in the Prometheus text format.
func TestMetrics(t *testing.T) {
	addr := freeAddr(t)
	c := apiservertest.Start(t, "c1", 1, apiservertest.Options{Modify: func(cfg *apiserverConfig) { cfg.MetricsListen = addr }})
	_ = c
	statetest.Eventually(t, time.Minute, "metrics are served", func() error {
		body, err := get("http://" + addr + "/metrics")
		if err != nil {
			return err
		}
		for _, m := range []string{"weft_apiserver_mirrored_keys", "weft_apiserver_heartbeat_timestamp_seconds", "go_goroutines"} {
			if !contains(body, m) {
				return fmt.Errorf("no %s in /metrics", m)
			}
		}
		return nil
	})
}

func readFile(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func writeFile(t testing.TB, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestDeadNodeGC: the pod CIDR of a node whose record stayed gone for the
// grace period is freed; a live node keeps its CIDR.
func TestDeadNodeGC(t *testing.T) {
	ctx := statetest.Context(t, 2*time.Minute)
	c := apiservertest.Start(t, "c1", 1, apiservertest.Options{Modify: func(cfg *apiserverConfig) {
		cfg.NodeGCGrace, cfg.GCInterval = time.Second, 200*time.Millisecond
	}})
	src := c.Store.NewClient(t)
	k := records.NewKeys(src.Prefix())
	alive, dead := netip.MustParsePrefix("10.100.1.0/24"), netip.MustParsePrefix("10.100.2.0/24")
	put(t, src, k.IPAM("c1", alive), &records.PodCIDR{CIDR: alive, Node: "n1"})
	put(t, src, k.IPAM("c1", dead), &records.PodCIDR{CIDR: dead, Node: "n2"})
	put(t, src, k.Node("c1", "n1"), &records.Node{Name: "n1", Cluster: "c1", ClusterID: 1, Underlay: []netip.Addr{netip.MustParseAddr("192.168.1.1")}})
	statetest.Eventually(t, time.Minute, "the dead node's pod CIDR is freed", func() error {
		if _, err := src.Get(ctx, k.IPAM("c1", dead)); err == nil {
			return fmt.Errorf("%v still allocated to n2", dead)
		}
		return nil
	})
	if _, err := src.Get(ctx, k.IPAM("c1", alive)); err != nil {
		t.Fatalf("the live node's pod CIDR: %v", err)
	}
}

// TestCompaction: the served store keeps only StoreHistory revisions.
func TestCompaction(t *testing.T) {
	ctx := statetest.Context(t, 2*time.Minute)
	c := apiservertest.Start(t, "c1", 1, apiservertest.Options{Modify: func(cfg *apiserverConfig) {
		cfg.StoreHistory, cfg.GCInterval = 5, 100*time.Millisecond
	}})
	src := c.Store.NewClient(t)
	sk := records.NewKeys(src.Prefix())
	for i := range 30 {
		put(t, src, sk.Node("c1", "n1"), &records.Node{Name: "n1", Cluster: "c1", ClusterID: 1, BootID: fmt.Sprint(i), Underlay: []netip.Addr{netip.MustParseAddr("192.168.1.1")}})
	}
	root, err := etcd.New(ctx, c.ServedConfig(c.Dir.Cert(clustermesh.UserRoot), c.Dir.Key(clustermesh.UserRoot)), statetest.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close(ctx)
	statetest.Eventually(t, time.Minute, "old revisions of the served store are compacted", func() error {
		if _, err := root.Raw().Get(ctx, "weft/", clientv3.WithPrefix(), clientv3.WithRev(2)); err == nil {
			return fmt.Errorf("revision 2 still readable")
		}
		return nil
	})
}

// TestMirrorBurstOfOneKey: many quick updates of one record (a Service
// created and at once given its endpoints, in a Kubernetes burst) reach
// the served store with the last value, and the mirror goes on with
// other records afterwards (two writes of one key in one batch used to
// make etcd refuse the batch for ever: "duplicate key given in txn").
func TestMirrorBurstOfOneKey(t *testing.T) {
	ctx := statetest.Context(t, 2*time.Minute)
	c := apiservertest.Start(t, "c1", 1, apiservertest.Options{})
	src := c.Store.NewClient(t)
	sk := records.NewKeys(src.Prefix())
	svc := func(name string, port uint16) *records.Service {
		return &records.Service{Cluster: "c1", Namespace: "ns", Name: name, Type: records.ServiceClusterIP,
			Frontends: []netip.Addr{netip.MustParseAddr("10.96.0.10")},
			Ports:     []records.ServicePort{{Port: port, TargetPort: port, Protocol: records.ProtoTCP}}}
	}
	root := served(t, c, c.Dir.Cert(clustermesh.UserRoot), c.Dir.Key(clustermesh.UserRoot))
	dk := records.NewKeys(root.Prefix())
	statetest.Eventually(t, time.Minute, "the services canary", func() error {
		_, err := root.Get(ctx, dk.Synced("c1", records.KindServices))
		return err
	})
	const n = 500
	for i := 1; i <= n; i++ {
		put(t, src, sk.Service("c1", "ns", "web"), svc("web", uint16(i)))
	}
	put(t, src, sk.Service("c1", "ns", "after"), svc("after", 80))
	statetest.Eventually(t, time.Minute, "the last value and the next record are served", func() error {
		kv, err := root.Get(ctx, dk.Service("c1", "ns", "web"))
		if err != nil {
			return err
		}
		got, err := dk.DecodeService(dk.Service("c1", "ns", "web"), kv.Value)
		if err != nil {
			return err
		}
		if got.Ports[0].Port != n {
			return fmt.Errorf("served port %d, want %d", got.Ports[0].Port, n)
		}
		_, err = root.Get(ctx, dk.Service("c1", "ns", "after"))
		return err
	})
}

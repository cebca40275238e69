package e2e

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/weftnet/weft/clustermesh"
	"github.com/weftnet/weft/datapath/bpf"
	"github.com/weftnet/weft/kvstore"
	"github.com/weftnet/weft/kvstore/etcd"
	"github.com/weftnet/weft/state/records"
	"github.com/weftnet/weft/testenv"
)

// pinnedIPCache opens node's pinned BPF ipcache map.
func pinnedIPCache(b testing.TB, e *testenv.Env, node string) *ebpf.Map {
	b.Helper()
	m, err := ebpf.LoadPinnedMap(filepath.Join(e.BPFFS, "weft", node, "weft_ipcache"), nil)
	if err != nil {
		b.Fatalf("open the BPF ipcache of %s: %v", node, err)
	}
	b.Cleanup(func() { m.Close() })
	return m
}

// waitInMaps polls until ip is in every map, and returns when it was.
func waitInMaps(b testing.TB, maps []*ebpf.Map, ip netip.Addr) time.Time {
	key := bpf.NewIPCacheKey(netip.PrefixFrom(ip, 32))
	var v bpf.IPCacheValue
	deadline := time.Now().Add(30 * time.Second)
	for _, m := range maps {
		for m.Lookup(&key, &v) != nil {
			if time.Now().After(deadline) {
				b.Fatalf("%s not in the BPF ipcache after 30s", ip)
			}
			time.Sleep(100 * time.Microsecond) // polling a map, not synchronising
		}
	}
	return time.Now()
}

// BenchmarkClusterMeshConvergence: an endpoint record written into cluster
// c1's store, until it is in the BPF ipcache of every node of c1 (the
// baseline: the cluster's own propagation) and of every node of c2 (across
// the mesh: mirror into c1's served store, watch by c2's agents, BPF
// write). p50/p99 over 500 endpoints, written one after another.
func BenchmarkClusterMeshConvergence(b *testing.B) {
	const n = 500
	meshBinaries(b)
	spec := testenv.DefaultSpec()
	spec.Clusters, spec.Nodes = 2, 2
	e := up(b, "cmconv", spec)
	waitMeshSynced(b, e, map[string][]string{"c1": {"c2"}, "c2": {"c1"}})
	var local, remote []*ebpf.Map
	for _, node := range nodesOf(e, "c1") {
		local = append(local, pinnedIPCache(b, e, node))
	}
	for _, node := range nodesOf(e, "c2") {
		remote = append(remote, pinnedIPCache(b, e, node))
	}
	store := hostStore(b, e, "c1")
	keys := records.NewKeys(store.Prefix())
	ctx := context.Background()
	var lLocal, lRemote []time.Duration
	for i := range n {
		ip := netip.AddrFrom4([4]byte{10, 100, 200 + byte(i>>8), byte(i)})
		key := keys.IPCache("c1", ip)
		val, err := records.Encode(key, &records.IPCacheEntry{IP: ip, Identity: records.ClusterIdentity(1, 500), HostIP: netip.MustParseAddr("192.168.1.1")})
		if err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		if _, err := store.Update(ctx, key, val); err != nil {
			b.Fatal(err)
		}
		lLocal = append(lLocal, waitInMaps(b, local, ip).Sub(start))
		lRemote = append(lRemote, waitInMaps(b, remote, ip).Sub(start))
		defer store.Delete(ctx, key)
	}
	for b.Loop() {
	}
	b.ReportMetric(pct(lLocal, 50), "local-p50-ms")
	b.ReportMetric(pct(lLocal, 99), "local-p99-ms")
	b.ReportMetric(pct(lRemote, 50), "remote-p50-ms")
	b.ReportMetric(pct(lRemote, 99), "remote-p99-ms")
	b.ReportMetric(pct(lRemote, 99)/pct(lLocal, 99), "p99-remote/local")
}

// BenchmarkClusterMeshBootstrap: cluster c1 holds 100k endpoint records
// (written straight into its store, mirrored by its apiserver); then c2 is
// connected: time until c2's agent holds all of them in its BPF ipcache,
// and the agent's resident memory growth per remote endpoint.
func BenchmarkClusterMeshBootstrap(b *testing.B) {
	const n = 100000
	meshBinaries(b)
	spec := testenv.DefaultSpec()
	spec.Clusters, spec.Nodes = 2, 1
	e := up(b, "cmboot", spec)
	ctx := context.Background()
	ta, tb := target(b, e, "c1"), target(b, e, "c2")
	if err := clustermesh.Disconnect(ctx, ta, tb, b.Logf); err != nil {
		b.Fatal(err)
	}
	writeEndpoints(b, e, "c1", n)
	eventually(b, 5*time.Minute, "c1's apiserver mirrored every endpoint", func() error {
		got, err := mirroredKeys(e, "c2-n1", "c1", "ip")
		if err == nil && got < n {
			err = fmt.Errorf("%d of %d mirrored", got, n)
		}
		return err
	})
	node := "c2-n1"
	m := pinnedIPCache(b, e, node)
	before := rss(b, e.AgentPID(node))
	start := time.Now()
	if err := clustermesh.Connect(ctx, ta, tb, b.Logf); err != nil {
		b.Fatal(err)
	}
	eventually(b, 5*time.Minute, "all remote endpoints in the BPF ipcache", func() error {
		got := 0
		var k bpf.IPCacheKey
		var v bpf.IPCacheValue
		for it := m.Iterate(); it.Next(&k, &v); {
			if records.ID(v.Identity).ClusterID() == 1 {
				got++
			}
		}
		if got < n {
			return fmt.Errorf("%d of %d", got, n)
		}
		return nil
	})
	took := time.Since(start)
	after := rss(b, e.AgentPID(node))
	if n, err := e.Node(node); err == nil {
		if log, err := os.ReadFile(n.Log); err == nil {
			for _, line := range strings.Split(string(log), "\n") {
				if strings.Contains(line, "remote records listed") || strings.Contains(line, "connected to remote") {
					b.Log(line)
				}
			}
		}
	}
	for b.Loop() {
	}
	b.ReportMetric(took.Seconds(), "bootstrap-100k-s")
	b.ReportMetric(before, "rss-before-MiB")
	b.ReportMetric(after, "rss-after-MiB")
	b.ReportMetric((after-before)*1024*1024/n, "rss-B/remote-endpoint")
}

// writeEndpoints writes n endpoint records into cluster's store in
// transactions of 100.
func writeEndpoints(b testing.TB, e *testenv.Env, cluster string, n int) {
	c, err := e.Cluster(cluster)
	if err != nil {
		b.Fatal(err)
	}
	cfg := kvstore.DefaultConfig()
	cfg.Endpoints, cfg.RateLimit = c.HostStoreEndpoints, kvstore.RateLimit{}
	cl, err := etcd.New(context.Background(), cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close(context.Background())
	keys := records.NewKeys(cl.Prefix())
	var ops []clientv3.Op
	for i := range n {
		ip := netip.AddrFrom4([4]byte{10, 110 + byte(i>>16), byte(i >> 8), byte(i)})
		key := keys.IPCache(cluster, ip)
		val, err := records.Encode(key, &records.IPCacheEntry{IP: ip, Identity: records.ClusterIdentity(uint32(c.ID), 600), HostIP: netip.MustParseAddr("192.168.1.1")})
		if err != nil {
			b.Fatal(err)
		}
		ops = append(ops, clientv3.OpPut(key, string(val)))
		if len(ops) == 100 || i == n-1 {
			if _, err := cl.Raw().Txn(context.Background()).Then(ops...).Commit(); err != nil {
				b.Fatal(err)
			}
			ops = ops[:0]
		}
	}
}

// mirroredKeys reads weft_apiserver_mirrored_keys{kind} of cluster's
// apiserver, over a connection opened in node's namespace.
func mirroredKeys(e *testenv.Env, node, cluster, kind string) (int, error) {
	c, err := e.Cluster(cluster)
	if err != nil {
		return 0, err
	}
	tg, err := e.Target("node/" + node)
	if err != nil {
		return 0, err
	}
	var conn net.Conn
	addr := net.JoinHostPort(fmt.Sprintf("192.168.0.%d", 10+c.ID), "9962")
	if err := tg.Do(func() (err error) { conn, err = net.DialTimeout("tcp4", addr, 2*time.Second); return err }); err != nil {
		return 0, err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintf(conn, "GET /metrics HTTP/1.0\r\nHost: %s\r\n\r\n", addr)
	body, err := io.ReadAll(bufio.NewReader(conn))
	if err != nil {
		return 0, err
	}
	want := `weft_apiserver_mirrored_keys{cluster="` + cluster + `",kind="` + kind + `"} `
	for _, line := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, want); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			return int(f), err
		}
	}
	return 0, fmt.Errorf("no %s in the metrics of %s", want, cluster)
}

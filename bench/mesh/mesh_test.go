package mesh

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/weftnet/weft/agent/clustermesh"
	"github.com/weftnet/weft/agent/endpoints"
	agentipcache "github.com/weftnet/weft/agent/ipcache"
	"github.com/weftnet/weft/agent/nodes"
	"github.com/weftnet/weft/agent/policy"
	"github.com/weftnet/weft/kvstore/etcd"
	"github.com/weftnet/weft/state/records"
)

// churnPeriod is how long 1 % of the remote endpoints churn per second.
const churnPeriod = 20 * time.Second

// result is one sub-benchmark's figures.
type result struct {
	p99, heapPerEp float64
}

// BenchmarkMesh connects one agent's clustermesh component to 1, 8 and 64
// remote clusters of 1,000 nodes × 30 endpoints; see the package doc for
// what is measured and where each piece runs.
func BenchmarkMesh(b *testing.B) {
	f := newFixture(b)
	for _, n := range clusterCounts(b) {
		b.Run(fmt.Sprintf("clusters-%d/nodes-%dx%d", n, nodesPerCluster, epsPerNode), func(b *testing.B) {
			f.grow(b, n)
			r := f.measure(b, n)
			if n == 1 {
				f.base = &r
			}
			if f.base != nil {
				b.ReportMetric(r.p99/f.base.p99, "p99-vs-1")
				b.ReportMetric(r.heapPerEp/f.base.heapPerEp, "heap-vs-1")
			}
			b.ReportMetric(0, "ns/op")
		})
	}
}

// clusterCounts are the sub-benchmarks' N: 1, 8 and 64, or the list in
// $WEFT_BENCH_MESH_CLUSTERS (e.g. "1,8,16"), ascending.
func clusterCounts(b *testing.B) []int {
	env := os.Getenv("WEFT_BENCH_MESH_CLUSTERS")
	if env == "" {
		return []int{1, 8, 64}
	}
	var out []int
	for _, f := range strings.Split(env, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 || n >= localID || (len(out) > 0 && n <= out[len(out)-1]) {
			b.Fatalf("WEFT_BENCH_MESH_CLUSTERS=%q: accepted are ascending cluster counts of 1 to %d, e.g. 1,8,64", env, localID-1)
		}
		out = append(out, n)
	}
	return out
}

// measure runs a fresh clustermesh component against the first n remotes.
func (f *fixture) measure(b *testing.B, n int) result {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	local, err := etcd.New(ctx, agentStore(f.local), log)
	if err != nil {
		b.Fatalf("connect to the agent's cluster store: %v", err)
	}
	defer local.Close(context.WithoutCancel(ctx))
	keys := records.NewKeys(local.Prefix())
	cc := records.ClusterConfig{Name: localName, ID: localID, Routing: records.RoutingTunnel,
		PodCIDRs: []netip.Prefix{netip.MustParsePrefix(localPool)}, PodCIDRMaskSize: 24}

	eps := n * epsPerCluster
	bm, err := newBPFIPCache(n*(epsPerCluster+nodesPerCluster) + 10000)
	if err != nil {
		b.Fatal(err)
	}
	defer bm.m.Close()
	nodeIP := netip.MustParseAddr("10.200.0.1")
	sync := agentipcache.New(bm, nodeIP, log)
	obs := &observer{next: sync}
	rt := &routes{}
	table := nodes.New(local, keys, "agent-1", localName, rt, sync, log)
	pol := policy.New(local, keys, "agent-1", nil, sync, func() []*endpoints.Endpoint { return nil }, log)
	mesh := clustermesh.New(local, keys, clustermesh.Config{Node: "agent-1", NodeIP: nodeIP, Cluster: cc,
		StateDir: filepath.Join(b.TempDir(), "clustermesh")}, table, obs, pol, nil, log)

	heap0, rss0 := memory()
	t0 := time.Now()
	done := make(chan error, 1)
	go func() { done <- mesh.Run(ctx) }()
	defer func() {
		cancel()
		// A component stuck in a slow sync may take long to stop; the
		// benchmark's verdict must not wait for it.
		select {
		case <-done:
		case <-time.After(2 * time.Minute):
			b.Logf("the clustermesh component did not stop within 2m of its context ending")
		}
	}()
	if err := waitSynced(mesh, n, 30*time.Minute); err != nil {
		b.Fatal(err)
	}
	initial := time.Since(t0)
	heap1, rss1 := memory()
	// Spot check: an endpoint of the last cluster is in the BPF map.
	if v, err := bm.lookup(endpointIP(n, 999, 29, false)); err != nil && !isFlipped(bm, n) {
		b.Fatalf("endpoint of %s not in the BPF ipcache: %v", clusterName(n), err)
	} else if err == nil && records.ID(v.Identity).ClusterID() != uint32(n) {
		b.Fatalf("BPF ipcache: identity %d for an endpoint of %s", v.Identity, clusterName(n))
	}

	// Churn 1 % of all remote endpoints per second, spread over the clusters.
	job := driverJob{Mode: "churn", Rate: float64(epsPerCluster) / 100, Seconds: churnPeriod.Seconds()}
	for id := 1; id <= n; id++ {
		job.Clusters = append(job.Clusters, f.driverCluster(id))
	}
	ch0 := obs.changes.Load()
	obs.since.Store(time.Now().UnixNano())
	cpu0, w0 := cpuTime(), time.Now()
	type churned struct {
		res driverResult
		err error
	}
	wrote := make(chan churned, 1)
	go func() { r, err := runChild(job); wrote <- churned{r, err} }()
	w := <-wrote
	if w.err != nil {
		b.Fatalf("churn: %v", w.err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for obs.recorded() < w.res.Churns && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	window := time.Since(w0)
	cpu := cpuTime() - cpu0
	changes := obs.changes.Load() - ch0
	lat := obs.take()
	slices.Sort(lat)
	if len(lat) == 0 {
		b.Fatalf("no churn reached the BPF ipcache (%d written)", w.res.Churns)
	}
	pct := func(p int) float64 { return float64(lat[(len(lat)-1)*p/100]) / 1e6 }

	st := mesh.Status()
	for _, r := range st {
		if r.Error != "" {
			b.Logf("remote %s: %s", r.Name, r.Error)
		}
	}
	res := result{p99: pct(99), heapPerEp: float64(heap1-heap0) / float64(eps)}
	b.ReportMetric(initial.Seconds(), "initial-sync-s")
	b.ReportMetric(res.heapPerEp, "heap-B/ep")
	b.ReportMetric(float64(rss1-rss0)/float64(eps), "rss-B/ep")
	b.ReportMetric(pct(50), "sync-p50-ms")
	b.ReportMetric(res.p99, "sync-p99-ms")
	b.ReportMetric(float64(lat[len(lat)-1])/1e6, "sync-max-ms")
	b.ReportMetric(cpu.Seconds()*1000/(float64(changes)/1000), "cpu-ms/1k-changes")
	b.ReportMetric(float64(changes)/window.Seconds(), "changes/s")
	b.ReportMetric(float64(w.res.Churns)/w.res.Seconds, "churns-written/s")
	b.ReportMetric(float64(w.res.Churns-len(lat)), "lost")
	b.Logf("%d clusters: %d endpoints synced in %v; heap %d→%d, rss %d→%d; churn %d in %.1fs, %d changes applied in %v, cpu %v; %d node routes; loadavg %s",
		n, eps, initial.Round(time.Millisecond), heap0, heap1, rss0, rss1, w.res.Churns, w.res.Seconds, changes, window.Round(time.Millisecond),
		cpu.Round(time.Millisecond), rt.n.Load(), loadavg())
	return res
}

// isFlipped reports whether the spot-checked endpoint lives at its churned
// address (it was churned by an earlier sub-benchmark).
func isFlipped(bm *bpfIPCache, n int) bool {
	_, err := bm.lookup(endpointIP(n, 999, 29, true))
	return err == nil
}

// waitSynced waits until the n remotes are connected and synced and all
// their endpoints are in the component's view.
func waitSynced(m *clustermesh.Mesh, n int, timeout time.Duration) error {
	start := time.Now()
	deadline, report := start.Add(timeout), start.Add(30*time.Second)
	for {
		st := m.Status()
		ok := len(st) == n
		for _, r := range st {
			ok = ok && r.Connected && r.Synced
		}
		if ok && m.IPCacheLen() == n*epsPerCluster {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("after %v: %d endpoints of %d, remotes %v", timeout, m.IPCacheLen(), n*epsPerCluster, st)
		}
		if time.Now().After(report) {
			report = report.Add(30 * time.Second)
			synced := 0
			for _, r := range st {
				if r.Synced {
					synced++
				}
			}
			fmt.Fprintf(os.Stderr, "mesh: after %v: %d of %d remotes synced, %d of %d endpoints\n",
				time.Since(start).Round(time.Second), synced, n, m.IPCacheLen(), n*epsPerCluster)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// memory is the Go heap in use after a collection, and the process's RSS
// after returning freed memory to the system.
func memory() (heap, rss uint64) {
	runtime.GC()
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	raw, _ := os.ReadFile("/proc/self/status")
	for _, l := range strings.Split(string(raw), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			kb, _ := strconv.ParseUint(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			rss = kb * 1024
		}
	}
	return ms.HeapAlloc, rss
}

// cpuTime is the process's user + system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func loadavg() string {
	raw, _ := os.ReadFile("/proc/loadavg")
	return strings.TrimSpace(string(raw))
}

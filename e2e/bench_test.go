package e2e

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/weftnet/weft/api/agentapi"
	"github.com/weftnet/weft/kvstore"
	"github.com/weftnet/weft/kvstore/dial"
	"github.com/weftnet/weft/state/records"
	"github.com/weftnet/weft/testenv"
)

// BenchmarkPodStart measures, per pod, CNI ADD on node 2 until a pod on
// node 1 reaches it (a TCP RST or accept comes back), over 200 pods, and
// reports the 50th and 99th percentiles, and those of ADD alone.
func BenchmarkPodStart(b *testing.B) {
	const pods = 200
	e := up(b, "podstart", testenv.DefaultSpec())
	ctx := context.Background()
	prober, err := e.AddPod(ctx, testenv.PodSpec{Name: "prober", Node: "c1-n1"})
	if err != nil {
		b.Fatal(err)
	}
	pt, _ := e.Target("pod/" + prober.Name)
	var total, add []time.Duration
	for i := 0; i < b.N; i++ {
		var names []string
		for j := range pods {
			name := fmt.Sprintf("ps-%d-%d", i, j)
			start := time.Now()
			p, err := e.AddPod(ctx, testenv.PodSpec{Name: name, Node: "c1-n2", Labels: map[string]string{"app": "bench"}})
			if err != nil {
				b.Fatal(err)
			}
			add = append(add, time.Since(start))
			names = append(names, name)
			reachable(b, pt, prober.Name, p, start)
			total = append(total, time.Since(start))
		}
		b.StopTimer()
		for _, n := range names {
			if err := e.DelPod(ctx, n); err != nil {
				b.Fatal(err)
			}
		}
		b.StartTimer()
	}
	b.ReportMetric(pct(total, 50), "p50-ms")
	b.ReportMetric(pct(total, 99), "p99-ms")
	b.ReportMetric(pct(add, 50), "add-p50-ms")
	b.ReportMetric(pct(add, 99), "add-p99-ms")
}

// reachable waits until p answers (a TCP RST or accept) from pod prober's
// namespace, at most a minute after start.
func reachable(b *testing.B, pt testenv.Target, prober string, p testenv.Pod, start time.Time) {
	b.Helper()
	addr := netip.AddrPortFrom(p.Addr(), 7300).String()
	deadline := start.Add(time.Minute)
	for {
		err := pt.Do(func() error {
			c, err := net.DialTimeout("tcp4", addr, 20*time.Millisecond)
			if err == nil {
				c.Close()
			}
			return err
		})
		if err == nil || errors.Is(err, syscall.ECONNREFUSED) {
			return
		}
		if time.Now().After(deadline) {
			b.Fatalf("pod %s (%s) not reachable from %s a minute after ADD: %v", p.Name, p.IP, prober, err)
		}
	}
}

// BenchmarkPodStartCrossCluster measures, per pod, CNI ADD on c1-n1 until
// a pod of the connected cluster c2 reaches it, and, from the same ADD,
// until a pod of c1's other node does (the baseline of the same run), over
// 200 pods (issue 17, goal 7: cross-cluster p99 < 50 ms).
func BenchmarkPodStartCrossCluster(b *testing.B) {
	const pods = 200
	meshBinaries(b)
	spec := testenv.DefaultSpec()
	spec.Clusters, spec.Nodes = 2, 2
	e := up(b, "podstart-mesh", spec)
	ctx := context.Background()
	probers := map[string]testenv.Pod{}
	targets := map[string]testenv.Target{}
	for name, node := range map[string]string{"local": "c1-n2", "remote": "c2-n1"} {
		p, err := e.AddPod(ctx, testenv.PodSpec{Name: "prober-" + name, Node: node})
		if err != nil {
			b.Fatal(err)
		}
		probers[name] = p
		if targets[name], err = e.Target("pod/" + p.Name); err != nil {
			b.Fatal(err)
		}
	}
	var local, remote []time.Duration
	for i := 0; i < b.N; i++ {
		var names []string
		for j := range pods {
			name := fmt.Sprintf("psx-%d-%d", i, j)
			start := time.Now()
			p, err := e.AddPod(ctx, testenv.PodSpec{Name: name, Node: "c1-n1", Labels: map[string]string{"app": "bench"}})
			if err != nil {
				b.Fatal(err)
			}
			names = append(names, name)
			// Alternate which prober goes first, so neither always waits
			// for the other's probe.
			order := []string{"local", "remote"}
			if j%2 == 1 {
				order = []string{"remote", "local"}
			}
			for _, which := range order {
				reachable(b, targets[which], probers[which].Name, p, start)
				if which == "local" {
					local = append(local, time.Since(start))
				} else {
					remote = append(remote, time.Since(start))
				}
			}
		}
		b.StopTimer()
		for _, n := range names {
			if err := e.DelPod(ctx, n); err != nil {
				b.Fatal(err)
			}
		}
		b.StartTimer()
	}
	b.ReportMetric(pct(remote, 50), "remote-p50-ms")
	b.ReportMetric(pct(remote, 99), "remote-p99-ms")
	b.ReportMetric(pct(local, 50), "local-p50-ms")
	b.ReportMetric(pct(local, 99), "local-p99-ms")
	b.ReportMetric(pct(remote, 99)/pct(local, 99), "p99-remote/local")
}

func pct(d []time.Duration, p int) float64 {
	s := slices.Clone(d)
	slices.Sort(s)
	i := (len(s)*p + 99) / 100
	return float64(s[max(0, min(len(s)-1, i-1))].Microseconds()) / 1000
}

// BenchmarkAgentMemory reports the resident memory of an idle agent (one
// node, no pods), then of the same agent once it holds 10k remote ipcache
// entries written straight into the store (8 writers), and how long writing
// them until the agent held them all took.
func BenchmarkAgentMemory(b *testing.B) {
	const remote = 10000
	spec := testenv.DefaultSpec()
	spec.Nodes = 1
	e := up(b, "agentmem", spec)
	ctx := context.Background()
	node := e.Nodes[0].Name
	idle := rss(b, e.AgentPID(node))

	cfg := kvstore.DefaultConfig()
	cfg.Backend, cfg.Endpoints = e.KVStore, e.Clusters[0].HostStoreEndpoints
	cfg.RateLimit = kvstore.RateLimit{}
	kv, err := dial.Open(ctx, cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	defer kv.Close(ctx)
	keys := records.NewKeys(kv.Prefix())
	host := netip.MustParseAddr("192.168.1.200") // a node that does not exist
	start := time.Now()
	var wg sync.WaitGroup
	errc := make(chan error, 8)
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < remote; i += 8 {
				ip := netip.AddrFrom4([4]byte{10, 150, byte(i >> 8), byte(i)})
				key := keys.IPCache(e.Clusters[0].Name, ip)
				val, err := records.Encode(key, &records.IPCacheEntry{IP: ip, Identity: records.ID(1<<16 | 300), HostIP: host})
				if err == nil {
					_, err = kv.Update(ctx, key, val)
				}
				if err != nil {
					errc <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errc)
	if err := <-errc; err != nil {
		b.Fatalf("write ipcache entries: %v", err)
	}
	a, closeFn, err := e.Agent(ctx, node)
	if err != nil {
		b.Fatal(err)
	}
	defer closeFn()
	eventually(b, 3*time.Minute, "agent holds 10k ipcache entries", func() error {
		st, err := a.Status(ctx, &agentapi.StatusRequest{})
		if err != nil {
			return err
		}
		if st.IpcacheEntries < remote {
			return fmt.Errorf("%d entries", st.IpcacheEntries)
		}
		return nil
	})
	synced := time.Since(start)
	loaded := rss(b, e.AgentPID(node))
	for b.Loop() {
	}
	b.ReportMetric(idle, "idle-rss-MiB")
	b.ReportMetric(loaded, "10k-rss-MiB")
	b.ReportMetric(synced.Seconds(), "write+sync-10k-s")
}

// rss is VmRSS of pid in MiB.
func rss(b *testing.B, pid int) float64 {
	b.Helper()
	st, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatalf("read agent status: %v", err)
	}
	for _, l := range strings.Split(string(st), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.Atoi(f[1])
			return float64(kb) / 1024
		}
	}
	b.Fatalf("no VmRSS in /proc/%d/status", pid)
	return 0
}

package e2e

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/weftnet/weft/api/agentapi"
	"github.com/weftnet/weft/testenv"
)

// BenchmarkAgentMemoryLocalEndpoints reports what one local endpoint
// costs the agent in memory, and how much of it comes back once the
// endpoints are deleted (issue 17, goal 6: at most 5 KiB RSS per local
// endpoint, returned after delete), for 200, 1k and 10k endpoints of two
// kinds:
//
//   - pods/N: an endpoint is a testenv pod: a network namespace of its
//     own, `weft-cni ADD` run in the node's namespace against the agent (a
//     veth pair, the agent's endpoint with an address from the node's pod
//     CIDR, an identity, the BPF endpoint entry, route and tcx
//     attachments, the netns cookie entry, the published ipcache entry);
//     deleted with `weft-cni DEL` and the namespace removed. Creating a
//     pod takes about 0.1 s of this machine (namespace, two processes, the
//     environment file), so 10k pods would take half an hour: pods/10000
//     runs only with WEFT_BENCH_10K_PODS=1.
//   - veths/N: an endpoint made the way weft-cni makes it but without the
//     pod's namespace: a veth pair created in the node's namespace (both
//     ends stay there), then the agent's CreateEndpoint with the host end,
//     the other end's MAC and no netns; deleted with DeleteEndpoint and
//     the veth removed. The agent does the same work as for a pod but the
//     netns cookie entry.
//
// All endpoints carry the same labels, so they share one identity; 4
// workers create and delete them. One node, one etcd; the node's pod CIDR
// is a /18 so that 10k endpoints fit. Per size, a fresh environment: the
// agent is measured idle (the baseline), with the N endpoints, and after
// they are all deleted. Each measurement waits until the agent has
// finished two garbage collections after the phase (Status calls, which
// answer a few bytes, make it allocate; an idle agent collects at the
// latest after two minutes; the second collection frees what the first
// left in sync.Pools), then reads go_gc_heap_live_bytes (the heap the
// last collection found live, which garbage made since does not move) and
// go_memstats_heap_inuse_bytes from its /metrics and VmRSS from /proc/<pid>/status; VmRSS once more a minute
// after the last measurement (rss-returned-1min).
func BenchmarkAgentMemoryLocalEndpoints(b *testing.B) {
	sizes := map[string][]int{"pods": {200, 1000}, "veths": {200, 1000, 10000}}
	if os.Getenv("WEFT_BENCH_10K_PODS") == "1" {
		sizes["pods"] = append(sizes["pods"], 10000)
	}
	for _, kind := range []string{"pods", "veths"} {
		for _, n := range sizes[kind] {
			b.Run(kind+"/"+strconv.Itoa(n), func(b *testing.B) { benchLocalEndpoints(b, kind, n) })
		}
	}
}

const memMetricsAddr = "127.0.0.1:9962"

func benchLocalEndpoints(b *testing.B, kind string, n int) {
	spec := testenv.DefaultSpec()
	spec.Nodes = 1
	spec.AgentArgs = []string{"--metrics-address", memMetricsAddr, "--pod-cidr-mask-size", "18"}
	e := up(b, "epmem", spec)
	ctx := context.Background()
	node := e.Nodes[0].Name
	a, closeFn, err := e.Agent(ctx, node)
	if err != nil {
		b.Fatal(err)
	}
	defer closeFn()
	nt, err := e.Target("node/" + node)
	if err != nil {
		b.Fatal(err)
	}
	pid := e.AgentPID(node)
	measure := func(phase string) agentMem {
		m := settledMem(b, nt, a, pid)
		b.Logf("%d endpoints, %s: rss %.2f MiB, heap live %.2f MiB, heap inuse %.2f MiB (gc %.0f)",
			n, phase, m.rss/(1<<20), m.heapLive/(1<<20), m.heapInuse/(1<<20), m.gcs)
		return m
	}
	idle := measure("idle")

	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("m%d", i)
	}
	add, del := podEndpoints(e, node)
	if kind == "veths" {
		add, del = vethEndpoints(a, nt)
	}
	start := time.Now()
	parallel(b, names, add)
	created := time.Since(start)
	holds(b, a, n, "after creating them")
	loaded := measure("created")

	start = time.Now()
	parallel(b, names, del)
	deleted := time.Since(start)
	holds(b, a, 0, "after deleting them all")
	after := measure("deleted")
	// The Go runtime returns freed pages to the kernel in the background:
	// a minute later shows what stays.
	time.Sleep(time.Minute)
	later := rss(b, pid) * (1 << 20)
	b.Logf("%d endpoints, deleted + 1 min: rss %.1f MiB", n, later/(1<<20))

	for b.Loop() {
	}
	per := func(v float64) float64 { return v / float64(n) }
	returned := func(idle, loaded, after float64) float64 {
		if loaded <= idle {
			return 1
		}
		return (loaded - after) / (loaded - idle)
	}
	b.ReportMetric(idle.rss/(1<<20), "idle-rss-MiB")
	b.ReportMetric(idle.heapLive/(1<<20), "idle-heap-live-MiB")
	b.ReportMetric(per(loaded.rss-idle.rss), "rss-B/ep")
	b.ReportMetric(per(loaded.heapLive-idle.heapLive), "heap-live-B/ep")
	b.ReportMetric(per(loaded.heapInuse-idle.heapInuse), "heap-inuse-B/ep")
	b.ReportMetric(per(after.rss-idle.rss), "kept-rss-B/ep")
	b.ReportMetric(per(after.heapLive-idle.heapLive), "kept-heap-live-B/ep")
	b.ReportMetric(returned(idle.rss, loaded.rss, after.rss), "rss-returned")
	b.ReportMetric(returned(idle.rss, loaded.rss, later), "rss-returned-1min")
	b.ReportMetric(returned(idle.heapLive, loaded.heapLive, after.heapLive), "heap-returned")
	b.ReportMetric(created.Seconds(), "create-s")
	b.ReportMetric(deleted.Seconds(), "delete-s")
}

// holds fails b unless the agent lists want endpoints.
func holds(b *testing.B, a agentapi.AgentClient, want int, when string) {
	b.Helper()
	st, err := a.Status(context.Background(), &agentapi.StatusRequest{})
	if err != nil {
		b.Fatal(err)
	}
	if int(st.Endpoints) != want {
		b.Fatalf("agent holds %d endpoints %s, want %d", st.Endpoints, when, want)
	}
}

// podEndpoints adds and deletes testenv pods on node.
func podEndpoints(e *testenv.Env, node string) (add, del func(string) error) {
	ctx := context.Background()
	add = func(name string) error {
		_, err := e.AddPod(ctx, testenv.PodSpec{Name: name, Node: node, Labels: map[string]string{"app": "mem"}})
		return err
	}
	del = func(name string) error { return e.DelPod(ctx, name) }
	return add, del
}

// vethEndpoints adds and deletes endpoints through the agent's API on veth
// pairs in the node's namespace: host end "<name>h", other end "<name>p".
func vethEndpoints(a agentapi.AgentClient, nt testenv.Target) (add, del func(string) error) {
	ctx := context.Background()
	add = func(name string) error {
		var mac net.HardwareAddr
		err := nt.Do(func() error {
			v := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: name + "h"}, PeerName: name + "p"}
			if err := netlink.LinkAdd(v); err != nil {
				return fmt.Errorf("create veth %s: %w", v.Name, err)
			}
			peer, err := netlink.LinkByName(v.PeerName)
			if err != nil {
				return err
			}
			mac = peer.Attrs().HardwareAddr
			return netlink.LinkSetUp(peer)
		})
		if err != nil {
			return err
		}
		_, err = a.CreateEndpoint(ctx, &agentapi.CreateEndpointRequest{
			ContainerId: "mem-" + name, Ifname: "eth0", HostIfname: name + "h", PodMac: mac.String(),
			PodName: name, Labels: map[string]string{"app": "mem"},
		})
		return err
	}
	del = func(name string) error {
		if _, err := a.DeleteEndpoint(ctx, &agentapi.DeleteEndpointRequest{ContainerId: "mem-" + name, Ifname: "eth0"}); err != nil {
			return err
		}
		return nt.Do(func() error {
			return netlink.LinkDel(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: name + "h"}})
		})
	}
	return add, del
}

// parallel runs fn for every name on 4 workers and fails b on the first
// error (the workers stop taking names then).
func parallel(b *testing.B, names []string, fn func(string) error) {
	b.Helper()
	work := make(chan string)
	errc := make(chan error, 4)
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for name := range work {
				if err := fn(name); err != nil {
					errc <- fmt.Errorf("%s: %w", name, err)
					return
				}
			}
		}()
	}
	func() {
		defer close(work)
		for _, name := range names {
			select {
			case work <- name:
			case err := <-errc:
				errc <- err
				return
			}
		}
	}()
	wg.Wait()
	close(errc)
	if err := <-errc; err != nil {
		b.Fatal(err)
	}
}

type agentMem struct {
	rss, heapLive, heapInuse float64 // bytes
	gcs                      float64 // completed collections
}

// settledMem waits until the agent has completed two garbage collections
// after this call (the second frees what the first left in sync.Pools),
// at most 3 minutes, making it allocate with Status calls meanwhile, then
// reads its memory.
func settledMem(b *testing.B, nt testenv.Target, a agentapi.AgentClient, pid int) agentMem {
	b.Helper()
	ctx := context.Background()
	first, err := scrapeMem(nt)
	if err != nil {
		b.Fatal(err)
	}
	deadline := time.Now().Add(3 * time.Minute)
	for {
		m, err := scrapeMem(nt)
		if err != nil {
			b.Fatal(err)
		}
		if m.gcs >= first.gcs+2 {
			m.rss = rss(b, pid) * (1 << 20)
			return m
		}
		if time.Now().After(deadline) {
			b.Fatalf("agent completed no garbage collection in 3 minutes (%v collections)", m.gcs)
		}
		for range 50 {
			if _, err := a.Status(ctx, &agentapi.StatusRequest{}); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// scrapeMem reads the agent's Go heap figures from its /metrics, served on
// the node namespace's loopback.
func scrapeMem(nt testenv.Target) (agentMem, error) {
	var c net.Conn
	err := nt.Do(func() (err error) {
		c, err = net.DialTimeout("tcp", memMetricsAddr, 5*time.Second)
		return err
	})
	if err != nil {
		return agentMem{}, fmt.Errorf("reach agent metrics: %w", err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	req, _ := http.NewRequest(http.MethodGet, "http://"+memMetricsAddr+"/metrics", nil)
	if err := req.Write(c); err != nil {
		return agentMem{}, fmt.Errorf("ask for agent metrics: %w", err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), req)
	if err != nil {
		return agentMem{}, fmt.Errorf("read agent metrics: %w", err)
	}
	defer resp.Body.Close()
	want := map[string]*float64{}
	var m agentMem
	want["go_memstats_heap_inuse_bytes"] = &m.heapInuse
	want["go_gc_heap_live_bytes"] = &m.heapLive
	want["go_gc_duration_seconds_count"] = &m.gcs
	found := 0
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		name, val, ok := strings.Cut(sc.Text(), " ")
		if p := want[name]; ok && p != nil {
			if *p, err = strconv.ParseFloat(val, 64); err != nil {
				return agentMem{}, fmt.Errorf("agent metric %s: %w", name, err)
			}
			found++
		}
	}
	if err := sc.Err(); err != nil {
		return agentMem{}, fmt.Errorf("read agent metrics: %w", err)
	}
	if found != len(want) {
		return agentMem{}, fmt.Errorf("agent metrics: %d of %d of %v found", found, len(want), want)
	}
	return m, nil
}

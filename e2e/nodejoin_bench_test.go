package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	clientv3 "go.etcd.io/etcd/client/v3"
	"golang.org/x/sys/unix"

	"github.com/weftnet/weft/internal/toolcache"
	"github.com/weftnet/weft/testenv"
)

// BenchmarkNodeJoin: a node joins, from the start of its agent's process
// until every other node of the cluster has a route to the node's pod
// CIDR, against flannel v0.28.4 (etcd backend, VXLAN) as the peer, in a
// second testenv environment of the same topology (three node namespaces
// on one underlay bridge, one store; flanneld started by the benchmark in
// each node namespace, with its defaults).
//
// Each round, for each fabric in alternating order, the last node leaves
// (Weft: SIGTERM, the agent revokes its lease and the node record goes;
// flannel: SIGTERM, and its subnet lease is deleted from etcd as an expiry
// would), every other node drops the route, and then the node's daemon is
// started again. The routes are followed with netlink subscriptions in the
// other nodes' namespaces, so no polling interval is added. The ratio is
// Weft's join over flannel's in the same round; the median over rounds is
// reported (goal ≤ 0.5, issue 17).
func BenchmarkNodeJoin(b *testing.B) {
	const rounds = 12
	ctx := context.Background()
	flanneld, err := toolcache.Ensure(ctx, toolcache.Flannel(), testWriter{b})
	if err != nil {
		b.Fatal(err)
	}
	spec := testenv.DefaultSpec()
	spec.Nodes = 3
	weft := newWeftJoiner(b, up(b, "joinw", spec))
	spec.NoAgents = true
	flannel := newFlannelJoiner(b, up(b, "joinf", spec), flanneld)

	var wj, fj, ratios []time.Duration
	for round := range rounds {
		first, second := joiner(weft), joiner(flannel)
		if round%2 == 1 {
			first, second = second, first
		}
		took := map[joiner]time.Duration{}
		for _, j := range []joiner{first, second} {
			j.leave(b)
			took[j] = j.join(b)
		}
		wj, fj = append(wj, took[weft]), append(fj, took[flannel])
		// ratios in units of 1/1000, so the median sorts as durations do
		ratios = append(ratios, time.Duration(1000*took[weft]/took[flannel]))
		b.Logf("round %d: weft %v, flannel %v", round+1, took[weft].Round(time.Millisecond), took[flannel].Round(time.Millisecond))
	}
	for b.Loop() {
	}
	b.ReportMetric(pct(wj, 50), "weft-join-p50-ms")
	b.ReportMetric(pct(fj, 50), "flannel-join-p50-ms")
	b.ReportMetric(pct(wj, 90), "weft-join-p90-ms")
	b.ReportMetric(pct(fj, 90), "flannel-join-p90-ms")
	slices.Sort(ratios)
	b.ReportMetric(float64(ratios[len(ratios)/2])/1000, "median-ratio-weft/flannel")
}

// A joiner makes the last node of its environment leave and join again.
type joiner interface {
	leave(b *testing.B)
	join(b *testing.B) time.Duration // from the daemon's start until every other node routes to it
}

// joinEnv is what both fabrics share: the environment, the joining node,
// the other nodes' routes and the joining node's pod CIDR (learnt when it
// first leaves: the route that goes away everywhere).
type joinEnv struct {
	e      *testenv.Env
	node   testenv.Node
	others []*routeWatch
	cidr   string
}

func newJoinEnv(b *testing.B, e *testenv.Env) joinEnv {
	j := joinEnv{e: e, node: e.Nodes[len(e.Nodes)-1]}
	for _, n := range e.Nodes[:len(e.Nodes)-1] {
		j.others = append(j.others, watchRoutes(b, n.NetNS))
	}
	return j
}

// waitLeft waits until a route that every other node had is gone from all
// of them, and remembers it as the node's pod CIDR.
func (j *joinEnv) waitLeft(b *testing.B, before []string) {
	deadline := time.Now().Add(time.Minute)
	for {
		var gone []string
		for _, dst := range before {
			if j.cidr != "" && dst != j.cidr {
				continue
			}
			if !slices.ContainsFunc(j.others, func(w *routeWatch) bool { return w.has(dst) }) {
				gone = append(gone, dst)
			}
		}
		if len(gone) == 1 {
			j.cidr = gone[0]
			return
		}
		if len(gone) > 1 || time.Now().After(deadline) {
			b.Fatalf("%s left: routes gone from every other node: %v (want exactly its pod CIDR)", j.node.Name, gone)
		}
		time.Sleep(5 * time.Millisecond) // the watches are live; this only rechecks them
	}
}

// shared are the destinations every other node routes to now.
func (j *joinEnv) shared() []string {
	var out []string
	for _, dst := range j.others[0].list() {
		if !slices.ContainsFunc(j.others, func(w *routeWatch) bool { return !w.has(dst) }) {
			out = append(out, dst)
		}
	}
	return out
}

// waitJoined waits until every other node routes to the node's pod CIDR
// and returns when the last one did.
func (j *joinEnv) waitJoined(b *testing.B, start time.Time) time.Duration {
	var last time.Time
	for _, w := range j.others {
		at, err := w.waitFor(j.cidr, time.Minute)
		if err != nil {
			b.Fatalf("%s joined: %v", j.node.Name, err)
		}
		if at.After(last) {
			last = at
		}
	}
	return last.Sub(start)
}

type weftJoiner struct{ joinEnv }

func newWeftJoiner(b *testing.B, e *testenv.Env) *weftJoiner {
	return &weftJoiner{newJoinEnv(b, e)}
}

func (w *weftJoiner) leave(b *testing.B) {
	before := w.shared()
	if err := w.e.StopAgent(context.Background(), w.node.Name, syscall.SIGTERM); err != nil {
		b.Fatal(err)
	}
	w.waitLeft(b, before)
}

func (w *weftJoiner) join(b *testing.B) time.Duration {
	start := time.Now()
	if err := w.e.StartAgent(context.Background(), w.node.Name); err != nil {
		b.Fatal(err)
	}
	took := w.waitJoined(b, start)
	if err := w.e.WaitAgent(context.Background(), w.node.Name, time.Minute); err != nil {
		b.Fatal(err)
	}
	return took
}

// flannelJoiner runs flanneld in every node namespace of a NoAgents
// environment, on the environment's store (the etcd v3 API).
type flannelJoiner struct {
	joinEnv
	bin   string
	store *clientv3.Client
}

const flannelPrefix = "/coreos.com/network"

func newFlannelJoiner(b *testing.B, e *testenv.Env, bin string) *flannelJoiner {
	store, err := clientv3.New(clientv3.Config{Endpoints: e.Clusters[0].HostStoreEndpoints, DialTimeout: 5 * time.Second})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { store.Close() })
	cfg, _ := json.Marshal(map[string]any{
		"Network": "10.200.0.0/16", "SubnetLen": 24,
		"Backend": map[string]any{"Type": "vxlan", "VNI": 1, "Port": 8472},
	})
	if _, err := store.Put(context.Background(), flannelPrefix+"/config", string(cfg)); err != nil {
		b.Fatalf("write flannel's network configuration: %v", err)
	}
	f := &flannelJoiner{joinEnv: newJoinEnv(b, e), bin: bin, store: store}
	b.Cleanup(func() {
		for _, n := range e.Nodes {
			stopFlannel(n)
		}
	})
	for _, n := range e.Nodes {
		f.start(b, n)
	}
	want := len(e.Nodes) - 1 // every other node's subnet
	for _, w := range f.others {
		eventually(b, time.Minute, "flannel routes every subnet", func() error {
			if got := len(w.list()); got < want {
				return fmt.Errorf("%d routes", got)
			}
			return nil
		})
	}
	return f
}

func (f *flannelJoiner) start(b *testing.B, n testenv.Node) {
	args := []string{f.bin,
		"--etcd-endpoints=" + strings.Join(f.e.Clusters[0].StoreEndpoints, ","),
		"--etcd-prefix=" + flannelPrefix,
		"--iface=ul0", "--public-ip=" + n.IP,
		"--subnet-file=" + filepath.Join(n.Dir, "flannel-subnet.env"),
		"--ip-masq=false",
	}
	if _, err := f.e.StartDaemon(args, n.NetNS, filepath.Join(n.Dir, "flanneld.log"), flannelPID(n)); err != nil {
		b.Fatal(err)
	}
}

func flannelPID(n testenv.Node) string { return filepath.Join(n.Dir, "flanneld.pid") }

// stopFlannel sends SIGTERM and SIGKILL after 2 s: flanneld can hang on
// SIGTERM (shared/RECIPES.md).
func stopFlannel(n testenv.Node) {
	b, err := os.ReadFile(flannelPID(n))
	if err != nil {
		return
	}
	var pid int
	if _, err := fmt.Sscan(string(b), &pid); err != nil || pid <= 0 {
		return
	}
	_ = syscall.Kill(pid, syscall.SIGTERM)
	for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if syscall.Kill(pid, 0) != nil {
			return
		}
	}
	_ = syscall.Kill(pid, syscall.SIGKILL)
	for syscall.Kill(pid, 0) == nil {
		time.Sleep(10 * time.Millisecond)
	}
}

func (f *flannelJoiner) leave(b *testing.B) {
	before := f.shared()
	stopFlannel(f.node)
	// The lease would expire after 24 h; delete it as the expiry would.
	ctx := context.Background()
	resp, err := f.store.Get(ctx, flannelPrefix+"/subnets/", clientv3.WithPrefix())
	if err != nil {
		b.Fatal(err)
	}
	deleted := 0
	for _, kv := range resp.Kvs {
		var lease struct{ PublicIP string }
		if json.Unmarshal(kv.Value, &lease) == nil && lease.PublicIP == f.node.IP {
			if _, err := f.store.Delete(ctx, string(kv.Key)); err != nil {
				b.Fatal(err)
			}
			deleted++
		}
	}
	if deleted != 1 {
		b.Fatalf("flannel lease of %s (%s): found %d under %s/subnets/", f.node.Name, f.node.IP, deleted, flannelPrefix)
	}
	f.waitLeft(b, before)
}

func (f *flannelJoiner) join(b *testing.B) time.Duration {
	start := time.Now()
	f.start(b, f.node)
	return f.waitJoined(b, start)
}

// routeWatch follows the IPv4 routes of the main table of one namespace
// through a netlink subscription.
type routeWatch struct {
	netns string
	mu    sync.Mutex
	dsts  map[string]time.Time // destination → when its route appeared
	wake  chan struct{}        // closed and replaced on every change
}

func watchRoutes(b *testing.B, name string) *routeWatch {
	h, err := netns.GetFromPath(testenv.NetNSPath(name))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { h.Close() })
	updates, done := make(chan netlink.RouteUpdate, 256), make(chan struct{})
	var closing atomic.Bool // closing done ends the subscription with an error
	b.Cleanup(func() { closing.Store(true); close(done) })
	w := &routeWatch{netns: name, dsts: map[string]time.Time{}, wake: make(chan struct{})}
	err = netlink.RouteSubscribeWithOptions(updates, done, netlink.RouteSubscribeOptions{
		Namespace: &h, ListExisting: true,
		ErrorCallback: func(err error) {
			if !closing.Load() {
				b.Errorf("route watch of %s: %v", name, err)
			}
		},
	})
	if err != nil {
		b.Fatalf("watch the routes of %s: %v", name, err)
	}
	go func() {
		for u := range updates {
			if u.Dst == nil || u.Dst.IP.To4() == nil || u.Table != unix.RT_TABLE_MAIN || isHostRoute(u.Dst) {
				continue
			}
			w.mu.Lock()
			switch u.Type {
			case unix.RTM_NEWROUTE:
				if _, ok := w.dsts[u.Dst.String()]; !ok {
					w.dsts[u.Dst.String()] = time.Now()
				}
			case unix.RTM_DELROUTE:
				delete(w.dsts, u.Dst.String())
			}
			close(w.wake)
			w.wake = make(chan struct{})
			w.mu.Unlock()
		}
	}()
	return w
}

// isHostRoute tells a route to one address (an endpoint's) or the
// underlay's own subnet from a route to another node's pod CIDR.
func isHostRoute(dst *net.IPNet) bool {
	ones, _ := dst.Mask.Size()
	return ones == 32 || dst.IP.To4()[0] == 192
}

func (w *routeWatch) has(dst string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	_, ok := w.dsts[dst]
	return ok
}

func (w *routeWatch) list() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Sorted(maps.Keys(w.dsts))
}

// waitFor returns when the route to dst appeared.
func (w *routeWatch) waitFor(dst string, timeout time.Duration) (time.Time, error) {
	deadline := time.After(timeout)
	for {
		w.mu.Lock()
		at, ok := w.dsts[dst]
		wake := w.wake
		w.mu.Unlock()
		if ok {
			return at, nil
		}
		select {
		case <-wake:
		case <-deadline:
			return time.Time{}, fmt.Errorf("no route to %s in %s after %v (routes: %v)", dst, w.netns, timeout, w.list())
		}
	}
}

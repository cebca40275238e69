package e2e

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/weftnet/weft/api/agentapi"
	"github.com/weftnet/weft/clustermesh"
	"github.com/weftnet/weft/kvstore"
	"github.com/weftnet/weft/kvstore/dial"
	"github.com/weftnet/weft/testenv"
)

var apiserverBuilt sync.Once

// meshBinaries adds weft-apiserver next to the other binaries of the run.
func meshBinaries(t testing.TB) {
	t.Helper()
	bin := binaries(t)
	var err error
	apiserverBuilt.Do(func() {
		out, berr := exec.Command(goBinary(), "build", "-o", built.dir+"/", "github.com/weftnet/weft/cmd/weft-apiserver").CombinedOutput()
		if berr != nil {
			err = fmt.Errorf("go build weft-apiserver: %w: %s", berr, out)
		}
	})
	if err != nil || bin.Agent == "" {
		t.Fatalf("build weft-apiserver: %v", err)
	}
}

func target(t testing.TB, e *testenv.Env, cluster string) clustermesh.Target {
	t.Helper()
	tg, err := e.MeshTarget(cluster)
	if err != nil {
		t.Fatal(err)
	}
	return tg
}

func addPod(t *testing.T, e *testenv.Env, name, node string) testenv.Pod {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	p, err := e.AddPod(ctx, testenv.PodSpec{Name: name, Node: node, Labels: map[string]string{"app": name}})
	if err != nil {
		t.Fatalf("add pod %s on %s: %v", name, node, err)
	}
	return p
}

func nodesOf(e *testenv.Env, cluster string) []string {
	var out []string
	for _, n := range e.Nodes {
		if n.Cluster == cluster {
			out = append(out, n.Name)
		}
	}
	return out
}

// hostStore opens cluster's store from the host namespace.
func hostStore(t testing.TB, e *testenv.Env, cluster string) kvstore.Client {
	t.Helper()
	c, err := e.Cluster(cluster)
	if err != nil {
		t.Fatal(err)
	}
	cfg := kvstore.DefaultConfig()
	cfg.Backend, cfg.Endpoints = e.KVStore, c.HostStoreEndpoints
	cl, err := dial.Open(context.Background(), cfg, slog.New(slog.NewTextHandler(testWriter{t}, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cl.Close(context.Background()) })
	return cl
}

func remoteStatus(ctx context.Context, e *testenv.Env, node, remote string) (*agentapi.RemoteCluster, error) {
	a, closeFn, err := e.Agent(ctx, node)
	if err != nil {
		return nil, err
	}
	defer closeFn()
	st, err := a.Status(ctx, &agentapi.StatusRequest{})
	if err != nil {
		return nil, err
	}
	for _, rc := range st.RemoteClusters {
		if rc.Name == remote {
			return rc, nil
		}
	}
	return nil, fmt.Errorf("%s knows no remote %s (has %v)", node, remote, st.RemoteClusters)
}

// waitMeshSynced waits until every node of each cluster is connected to
// and synced with every remote of it.
func waitMeshSynced(t testing.TB, e *testenv.Env, remotes map[string][]string) {
	t.Helper()
	eventually(t, 2*time.Minute, "every node connected and synced", func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		for cluster, rs := range remotes {
			for _, n := range nodesOf(e, cluster) {
				for _, r := range rs {
					rc, err := remoteStatus(ctx, e, n, r)
					if err != nil {
						return err
					}
					if !rc.Connected || !rc.Synced {
						return fmt.Errorf("%s: remote %s connected=%v synced=%v (%s)", n, r, rc.Connected, rc.Synced, rc.Error)
					}
				}
			}
		}
		return nil
	})
}

// drained says what node still holds of cluster other: remote status,
// nodes, BPF ipcache entries, routes.
func drained(ctx context.Context, e *testenv.Env, node, other string) error {
	c, err := e.Cluster(other)
	if err != nil {
		return err
	}
	pool := netip.MustParsePrefix(c.PodCIDRPool)
	a, closeFn, err := e.Agent(ctx, node)
	if err != nil {
		return err
	}
	defer closeFn()
	st, err := a.Status(ctx, &agentapi.StatusRequest{})
	if err != nil {
		return err
	}
	if len(st.RemoteClusters) > 0 {
		return fmt.Errorf("%s still reports remotes %v", node, st.RemoteClusters)
	}
	nodes, err := a.ListNodes(ctx, &agentapi.ListNodesRequest{})
	if err != nil {
		return err
	}
	for _, n := range nodes.Nodes {
		if n.Cluster == other {
			return fmt.Errorf("%s still lists node %s of %s", node, n.Name, other)
		}
	}
	tab, err := a.DumpBPF(ctx, &agentapi.DumpBPFRequest{Map: "ipcache"})
	if err != nil {
		return err
	}
	for _, r := range tab.Rows {
		if len(r.Cells) == 0 {
			continue
		}
		p, err := netip.ParsePrefix(r.Cells[0])
		if err == nil && pool.Overlaps(p) {
			return fmt.Errorf("%s: BPF ipcache still holds %v of %s", node, r.Cells, other)
		}
		if slices.ContainsFunc(r.Cells, func(s string) bool { return strings.HasPrefix(s, fmt.Sprintf("192.168.%d.", c.ID)) }) {
			return fmt.Errorf("%s: BPF ipcache still holds %v of %s's nodes", node, r.Cells, other)
		}
	}
	var out strings.Builder
	if err := e.Exec(ctx, "node/"+node, nil, &out, &out, "ip", "route", "show"); err != nil {
		return fmt.Errorf("ip route in %s: %w: %s", node, err, out.String())
	}
	for _, line := range strings.Split(out.String(), "\n") {
		if f := strings.Fields(line); len(f) > 0 {
			if p, err := netip.ParsePrefix(f[0]); err == nil && pool.Overlaps(p) {
				return fmt.Errorf("%s: route %q to %s is still there", node, line, other)
			}
		}
	}
	return nil
}

// greet connects from pod src to dst and reads the listener's greeting.
func greet(e *testenv.Env, src string, dst netip.AddrPort) error {
	tg, err := e.Target("pod/" + src)
	if err != nil {
		return err
	}
	var c net.Conn
	if err := tg.Do(func() (err error) { c, err = net.DialTimeout("tcp4", dst.String(), 1500*time.Millisecond); return err }); err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil || line != "ok\n" {
		return fmt.Errorf("connected to %s, but no greeting: %q %v", dst, line, err)
	}
	return nil
}

// weftCLI runs the weft binary against node of e.
func weftCLI(t testing.TB, e *testenv.Env, node, stdin string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, e.Bin.Weft, append([]string{"--name", e.Name, "--node", node}, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("weft %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// rejected is N of "rejected N records" in a remote's status error.
func rejected(status string) int {
	_, after, ok := strings.Cut(status, "rejected ")
	if !ok {
		return 0
	}
	n, _ := strconv.Atoi(strings.Fields(after)[0])
	return n
}

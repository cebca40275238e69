package testenv

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/weftnet/weft/datapath/bpf"
)

// CgroupRoot is the cgroup v2 mount: /sys/fs/cgroup/unified where cgroup2
// is mounted there (hybrid hosts), else /sys/fs/cgroup. Up mounts one at
// /sys/fs/cgroup/unified when the host has none.
func CgroupRoot() string {
	if p := bpf.FindCgroup2(); p != "" {
		return p
	}
	return "/sys/fs/cgroup"
}

// BPFRoot is the bpffs mount the environments pin under; Up mounts bpffs
// there when the host has not (bpf.EnsureFS).
const BPFRoot = bpf.DefaultFS

// ErrExists: an environment of that name already exists.
var ErrExists = errors.New("environment already exists")

// Up builds the environment spec describes: underlay, stores, node
// namespaces and agents, and returns once every agent answers Status. On
// failure everything created so far is removed again.
func Up(ctx context.Context, spec Spec) (*Env, error) {
	if err := spec.Validate(); err != nil {
		return nil, err
	}
	if exists(spec.Name) {
		if !spec.Replace {
			return nil, fmt.Errorf("bring up environment %q: %w (state in %s); run `weft testenv down --name %s` first, or pass --replace", spec.Name, ErrExists, Dir(spec.Name), spec.Name)
		}
		if err := Down(ctx, spec.Name, spec.Progress, spec.Log); err != nil {
			return nil, fmt.Errorf("replace environment %q: %w", spec.Name, err)
		}
	}
	if err := spec.Bin.check(ctx, spec.KVStore, spec.progress()); err != nil {
		return nil, err
	}
	if spec.Kubernetes {
		if err := ensureKubeTools(ctx, spec.progress()); err != nil {
			return nil, err
		}
	}
	if _, err := bpf.EnsureCgroup2(); err != nil {
		return nil, fmt.Errorf("bring up environment %q: %w", spec.Name, err)
	}
	e := newEnv(spec)
	if err := os.MkdirAll(e.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("create %s: %w", e.Dir, err)
	}
	// Recorded before anything exists, so Down finds every part even if
	// this process dies half way.
	if err := e.save(); err != nil {
		return nil, err
	}
	if err := e.build(ctx, spec); err != nil {
		if derr := e.Down(context.WithoutCancel(ctx)); derr != nil {
			err = errors.Join(err, derr)
		}
		return nil, fmt.Errorf("bring up environment %q: %w", e.Name, err)
	}
	return e, nil
}

// overlappingPool is every cluster's pod CIDR pool with
// Spec.OverlappingPodCIDRs.
const overlappingPool = "10.100.0.0/16"

// exists reports whether anything of environment name is still around.
func exists(name string) bool {
	if _, err := os.Stat(Dir(name)); !errors.Is(err, fs.ErrNotExist) {
		return true
	}
	if _, err := os.Stat(NetNSPath(underlayNS(name))); err == nil {
		return true
	}
	return len(markedPIDs(name)) > 0
}

func underlayNS(env string) string { return "weft-" + env + "-underlay" }

// newEnv lays out names, addresses and paths.
func newEnv(spec Spec) *Env {
	e := &Env{
		Name:      spec.Name,
		Dir:       Dir(spec.Name),
		Routing:   spec.Routing,
		KVStore:   spec.KVStore,
		Underlay:  underlayNS(spec.Name),
		Gateway:   gatewayIP.String(),
		BPFFS:     filepath.Join(BPFRoot, "weft-testenv-"+spec.Name),
		Cgroup:    filepath.Join(CgroupRoot(), "weft-testenv-"+spec.Name),
		Bin:       spec.Bin,
		Created:   time.Now().UTC(),
		AgentArgs: spec.AgentArgs,
		Pods:      []Pod{},
	}
	if spec.LeaseTTL > 0 {
		e.LeaseTTL = spec.LeaseTTL.String()
	}
	e.Kubernetes = spec.Kubernetes
	e.ChartAPIServer = spec.Kubernetes && spec.ChartAPIServer
	e.setOutput(spec.Progress, spec.Log)
	for c := 1; c <= spec.Clusters; c++ {
		name := fmt.Sprintf("c%d", c)
		cl := Cluster{
			Name:           name,
			ID:             c,
			PodCIDRPool:    fmt.Sprintf("10.%d.0.0/16", 99+c),
			StoreEndpoints: []string{storeURL(c, spec.KVStore)},
			StoreLog:       filepath.Join(e.Dir, "store-"+name+".log"),
			StorePIDFile:   filepath.Join(e.Dir, "store-"+name+".pid"),
		}
		for m := 1; m < spec.StoreMembers; m++ {
			cl.StoreEndpoints = append(cl.StoreEndpoints, memberURL(cl.StoreEndpoints[0], m))
			cl.StoreMembers = append(cl.StoreMembers, filepath.Join(e.Dir, fmt.Sprintf("store-%s-m%d.pid", name, m)))
		}
		if spec.OverlappingPodCIDRs {
			cl.PodCIDRPool, cl.GlobalCIDR = overlappingPool, fmt.Sprintf("242.%d.0.0/16", c)
		}
		e.Clusters = append(e.Clusters, cl)
		if spec.Kubernetes {
			e.setKubeLayout()
		}
		for i := 1; i <= spec.Nodes; i++ {
			node := fmt.Sprintf("%s-n%d", name, i)
			dir := filepath.Join(e.Dir, node)
			e.Nodes = append(e.Nodes, Node{
				Name:    node,
				Cluster: name,
				NetNS:   "weft-" + spec.Name + "-" + node,
				IP:      nodeIP(c, i).String(),
				Dir:     dir,
				Socket:  filepath.Join(dir, "agent.sock"),
				Cgroup:  filepath.Join(e.Cgroup, node),
				Log:     filepath.Join(dir, "agent.log"),
				PIDFile: filepath.Join(dir, "agent.pid"),
			})
		}
	}
	return e
}

func (e *Env) build(ctx context.Context, spec Spec) error {
	e.step("underlay %s: bridge %s, gateway %s/%d", e.Underlay, bridgeName, e.Gateway, underlayBits)
	if err := e.buildUnderlay(len(e.Clusters)); err != nil {
		return err
	}
	if err := bpf.EnsureFS(e.BPFFS); err != nil {
		return fmt.Errorf("create BPF pin directory %s: %w", e.BPFFS, err)
	}
	if err := os.MkdirAll(e.Cgroup, 0o755); err != nil {
		return fmt.Errorf("create cgroup %s: %w", e.Cgroup, err)
	}
	for i := range e.Clusters {
		c := &e.Clusters[i]
		e.step("store of %s: %s at %s", c.Name, e.KVStore, c.StoreEndpoints[0])
		if err := e.startStore(ctx, c); err != nil {
			return err
		}
		if err := e.save(); err != nil {
			return err
		}
	}
	for _, n := range e.Nodes {
		e.step("node %s: netns %s, %s/%d", n.Name, n.NetNS, n.IP, underlayBits)
		if err := e.buildNode(n); err != nil {
			return err
		}
	}
	if len(e.Clusters) > 1 && !e.Kubernetes { // Kubernetes mode: EnableMesh below prepares it
		for _, c := range e.Clusters {
			if c.GlobalCIDR != "" {
				// The agents read the global CIDR from cluster-config at
				// start: the apiserver publishes it first.
				if err := e.EnableMesh(ctx, c.Name); err != nil {
					return err
				}
				continue
			}
			if _, err := e.prepareMesh(c.Name); err != nil {
				return err
			}
		}
	}
	if e.Kubernetes {
		// The mirror runs before the agents: they take a pod's labels
		// from its mirrored record once the cluster's pods are synced.
		for _, c := range e.Clusters {
			if err := e.startKube(ctx, c); err != nil {
				return err
			}
			if e.ChartAPIServer {
				continue // weft install puts the chart's apiserver there
			}
			if err := e.EnableMesh(ctx, c.Name); err != nil {
				return err
			}
		}
	}
	if !spec.NoAgents {
		if err := e.startAgents(ctx); err != nil {
			return err
		}
	}
	if len(e.Clusters) > 1 && !e.ChartAPIServer { // clustermesh: one apiserver per cluster, every pair connected (testenv/mesh.go)
		if err := e.ConnectMesh(ctx); err != nil {
			return err
		}
	}
	mode := ""
	if e.Kubernetes {
		mode = ", Kubernetes mode (weft testenv kubectl --cluster c1 -- get pods)"
	}
	e.step("environment %q is up: %d cluster(s), %d node(s), %s routing, %s store%s", e.Name, len(e.Clusters), len(e.Nodes), e.Routing, e.KVStore, mode)
	return nil
}

// startAgents starts every node's agent and waits until all answer. The
// first node of each cluster starts before the others of its cluster, so
// it takes the cluster's first pod CIDR: c1-n1 has 10.100.0.0/24 in every
// run (agents that start together take CIDRs in the order they get to the
// store).
func (e *Env) startAgents(ctx context.Context) error {
	var first, rest []Node
	seen := map[string]bool{}
	for _, n := range e.Nodes {
		if seen[n.Cluster] {
			rest = append(rest, n)
			continue
		}
		seen[n.Cluster] = true
		first = append(first, n)
	}
	for _, batch := range [][]Node{first, rest} {
		for _, n := range batch {
			if err := e.StartAgent(ctx, n.Name); err != nil {
				return err
			}
		}
		for _, n := range batch {
			if err := e.WaitAgent(ctx, n.Name, 2*time.Minute); err != nil {
				return err
			}
		}
	}
	return nil
}

// step prints one progress line.
func (e *Env) step(format string, args ...any) {
	fmt.Fprintf(e.progress, "• "+format+"\n", args...)
}

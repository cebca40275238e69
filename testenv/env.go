package testenv

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	"github.com/weftnet/weft/internal/flock"
)

// StateRoot holds one directory per environment.
const StateRoot = "/var/run/weft/testenv"

// Env is a running environment, as recorded in env.json.
type Env struct {
	Name     string `json:"name"`
	Dir      string `json:"dir"`
	Routing  string `json:"routing"`
	KVStore  string `json:"kvstore"`
	Underlay string `json:"underlay"` // netns of the bridge and the stores
	Gateway  string `json:"gateway"`  // bridge address, the nodes' default route
	BPFFS    string `json:"bpffs"`    // --bpffs of every agent
	Cgroup   string `json:"cgroup"`   // parent of the nodes' cgroups
	LeaseTTL string `json:"leaseTTL,omitempty"`
	// Kubernetes: each cluster runs a kube-apiserver and testenv's kubelet,
	// and its weft-apiserver mirrors it (testenv/kube.go).
	Kubernetes bool `json:"kubernetes,omitempty"`
	// ChartAPIServer: each cluster's weft-apiserver is the one Weft's Helm
	// chart installs, run by run-kube (testenv/chartpod.go).
	ChartAPIServer bool      `json:"chartAPIServer,omitempty"`
	Bin            Binaries  `json:"binaries"`
	Clusters       []Cluster `json:"clusters"`
	Nodes          []Node    `json:"nodes"`
	Pods           []Pod     `json:"pods"`
	Created        time.Time `json:"created"`

	AgentArgs []string `json:"agentArgs,omitempty"`

	progress io.Writer
	log      *slog.Logger
}

// Cluster is one cluster and its store.
type Cluster struct {
	Name        string `json:"name"`
	ID          int    `json:"id"`
	PodCIDRPool string `json:"podCIDRPool"`
	// GlobalCIDR is the cluster's global addressing range (weft-apiserver
	// --global-cidr); empty: off.
	GlobalCIDR string `json:"globalCIDR,omitempty"`
	// StoreEndpoints are reachable from node namespaces (agents).
	StoreEndpoints []string `json:"storeEndpoints"`
	// HostStoreEndpoints are reachable from the host namespace (the CLI).
	HostStoreEndpoints []string `json:"hostStoreEndpoints"`
	StoreLog           string   `json:"storeLog"`
	StorePIDFile       string   `json:"storePIDFile"`
	// StoreMembers are the pid files of the store's other etcd members
	// (member 1, 2 of a 3-member store; member 0 is StorePIDFile).
	StoreMembers []string `json:"storeMembers,omitempty"`
	// Kubeconfig reaches the cluster's kube-apiserver from the host
	// namespace (Kubernetes mode only), UnderlayKubeconfig from the
	// underlay namespace; KubeLog and KubePIDFile are run-kube's.
	Kubeconfig         string `json:"kubeconfig,omitempty"`
	UnderlayKubeconfig string `json:"underlayKubeconfig,omitempty"`
	KubeLog            string `json:"kubeLog,omitempty"`
	KubePIDFile        string `json:"kubePIDFile,omitempty"`
}

// Node is one node namespace and its agent.
type Node struct {
	Name    string `json:"name"`
	Cluster string `json:"cluster"`
	NetNS   string `json:"netns"`
	IP      string `json:"ip"` // underlay address, without prefix length
	Dir     string `json:"dir"`
	Socket  string `json:"socket"`
	Cgroup  string `json:"cgroup"`
	Log     string `json:"log"`
	PIDFile string `json:"pidFile"`
}

// Pod is one pod namespace wired by weft-cni.
type Pod struct {
	Name        string            `json:"name"`
	Node        string            `json:"node"`
	NetNS       string            `json:"netns"`
	ContainerID string            `json:"containerID"`
	IP          string            `json:"ip,omitempty"` // without prefix length; empty until ADD succeeded
	Labels      map[string]string `json:"labels,omitempty"`
	// Kube is namespace/name of the Kubernetes pod testenv's kubelet
	// created this one for (Kubernetes mode).
	Kube string `json:"kube,omitempty"`
}

// Addr is the pod's address.
func (p Pod) Addr() netip.Addr { a, _ := netip.ParseAddr(p.IP); return a }

// Addr is the node's underlay address.
func (n Node) Addr() netip.Addr { a, _ := netip.ParseAddr(n.IP); return a }

// Dir returns the state directory of environment name.
func Dir(name string) string { return filepath.Join(StateRoot, name) }

func stateFile(name string) string { return filepath.Join(Dir(name), "env.json") }

// ErrNotFound: no environment of that name is recorded.
var ErrNotFound = errors.New("environment not found")

// Load reads the environment name from its state file. Progress and log
// output of later calls go to progress and log (nil: discarded).
func Load(name string, progress io.Writer, log *slog.Logger) (*Env, error) {
	if err := ValidateName(name); err != nil {
		return nil, err
	}
	b, err := os.ReadFile(stateFile(name))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("load environment %q: %w (no %s; bring one up with `weft testenv up --name %s`)", name, ErrNotFound, stateFile(name), name)
	}
	if err != nil {
		return nil, fmt.Errorf("load environment %q: %w", name, err)
	}
	var e Env
	if err := json.Unmarshal(b, &e); err != nil {
		return nil, fmt.Errorf("load environment %q: decode %s: %w", name, stateFile(name), err)
	}
	e.setOutput(progress, log)
	return &e, nil
}

func (e *Env) setOutput(progress io.Writer, log *slog.Logger) {
	if progress == nil {
		progress = io.Discard
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	e.progress, e.log = progress, log.With("component", "testenv", "env", e.Name)
}

// save writes env.json atomically. Callers hold the environment's lock.
func (e *Env) save() error {
	b, err := json.MarshalIndent(e, "", "  ")
	if err != nil {
		return fmt.Errorf("encode environment %q: %w", e.Name, err)
	}
	tmp := stateFile(e.Name) + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return fmt.Errorf("write %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, stateFile(e.Name)); err != nil {
		return fmt.Errorf("write %s: %w", stateFile(e.Name), err)
	}
	return nil
}

// update runs fn on the freshest recorded state under the environment's
// lock and saves the result, so concurrent `pod add` calls do not lose
// each other's pods.
func (e *Env) update(fn func(*Env) error) error {
	unlock, err := lockDir(e.Dir)
	if err != nil {
		return err
	}
	defer unlock()
	fresh, err := Load(e.Name, e.progress, e.log)
	if err != nil {
		return err
	}
	if err := fn(fresh); err != nil {
		return err
	}
	if err := fresh.save(); err != nil {
		return err
	}
	e.Pods, e.Nodes, e.Clusters = fresh.Pods, fresh.Nodes, fresh.Clusters
	return nil
}

// lockDir takes an exclusive lock on dir/lock.
func lockDir(dir string) (func(), error) {
	unlock, err := flock.Lock(filepath.Join(dir, "lock"))
	if err != nil {
		return nil, fmt.Errorf("lock environment: %w", err)
	}
	return unlock, nil
}

// Node returns the node of that name.
func (e *Env) Node(name string) (Node, error) {
	for _, n := range e.Nodes {
		if n.Name == name {
			return n, nil
		}
	}
	return Node{}, fmt.Errorf("node %q: not in environment %q (nodes: %s)", name, e.Name, nodeNames(e.Nodes))
}

// Pod returns the pod of that name.
func (e *Env) Pod(name string) (Pod, error) {
	for _, p := range e.Pods {
		if p.Name == name {
			return p, nil
		}
	}
	return Pod{}, fmt.Errorf("pod %q: not in environment %q", name, e.Name)
}

// Cluster returns the cluster of that name.
func (e *Env) Cluster(name string) (Cluster, error) {
	for _, c := range e.Clusters {
		if c.Name == name {
			return c, nil
		}
	}
	return Cluster{}, fmt.Errorf("cluster %q: not in environment %q", name, e.Name)
}

func nodeNames(nodes []Node) string {
	s := ""
	for i, n := range nodes {
		if i > 0 {
			s += ", "
		}
		s += n.Name
	}
	if s == "" {
		return "none"
	}
	return s
}

package testenv

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"regexp"
	"time"
)

// Routing modes and store backends accepted in Spec.
const (
	RoutingTunnel = "tunnel"
	RoutingNative = "native"
	StoreEtcd     = "etcd"
	StoreConsul   = "consul"
)

// DefaultName is the environment used when none is named.
const DefaultName = "weft"

// Spec describes an environment to bring up.
type Spec struct {
	Name     string // environment name, a DNS label of at most 20 characters
	Clusters int    // number of clusters, 1–9
	Nodes    int    // nodes per cluster, 1–50
	Routing  string // tunnel or native
	KVStore  string // etcd or consul
	// StoreMembers is the number of etcd members of each cluster's store:
	// 1 (default) or 3 (a quorum that survives one member, for the fault
	// suite's quorum loss). Consul runs one dev agent.
	StoreMembers int
	// LeaseTTL is the agents' --kvstore-lease-ttl; zero keeps the agent's
	// default. Tests shorten it so a dead node vanishes sooner.
	LeaseTTL time.Duration
	// Replace tears down an existing environment of the same name first
	// instead of refusing.
	Replace bool
	// Bin locates weft-agent, weft-cni and weft (for run-store).
	Bin Binaries
	// AgentArgs are appended to every agent's command line.
	AgentArgs []string
	// Kubernetes gives each cluster a real kube-apiserver (on its own
	// etcd) mirrored by the cluster's weft-apiserver, and testenv's
	// kubelet, which wires the Pods bound to its nodes through weft-cni.
	Kubernetes bool
	// ChartAPIServer (with Kubernetes): testenv starts no weft-apiserver
	// and connects no mesh; once Weft's Helm chart is installed into a
	// cluster (weft install), run-kube runs the chart's apiserver pod
	// (testenv/chartpod.go), and clustermesh is set up by kube context.
	ChartAPIServer bool
	// NoAgents builds the node namespaces but starts no agent: the caller
	// starts its own with StartDaemon (e.g. from a systemd unit's command
	// line), using each node's Socket, Dir, Log and PIDFile.
	NoAgents bool
	// OverlappingPodCIDRs gives every cluster the same pod CIDR pool
	// (10.100.0.0/16) and global addressing with the global CIDR
	// 242.<cluster id>.0.0/16, so that the clusters connect
	// (docs/clustermesh.md, "Global addressing").
	OverlappingPodCIDRs bool

	// Progress receives one line per step as it happens; nil discards.
	Progress io.Writer
	// Log receives details; nil discards.
	Log *slog.Logger
}

// DefaultSpec is one cluster of two tunnel-mode nodes on etcd.
func DefaultSpec() Spec {
	return Spec{Name: DefaultName, Clusters: 1, Nodes: 2, Routing: RoutingTunnel, KVStore: StoreEtcd}
}

var nameRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]*[a-z0-9])?$`)

// ValidateName accepts a lowercase DNS label of at most 20 characters: it
// becomes part of namespace, cgroup and pin directory names.
func ValidateName(name string) error {
	if len(name) == 0 || len(name) > 20 || !nameRE.MatchString(name) {
		return fmt.Errorf("environment name %q: accepted is a lowercase DNS label of 1–20 characters (a-z, 0-9, '-'), e.g. %q", name, DefaultName)
	}
	return nil
}

// ValidatePodName accepts a lowercase DNS label of at most 30 characters.
func ValidatePodName(name string) error {
	if len(name) == 0 || len(name) > 30 || !nameRE.MatchString(name) {
		return fmt.Errorf("pod name %q: accepted is a lowercase DNS label of 1–30 characters, e.g. web-1", name)
	}
	return nil
}

// Validate checks every field and says what is accepted.
func (s *Spec) Validate() error {
	var errs []error
	if err := ValidateName(s.Name); err != nil {
		errs = append(errs, err)
	}
	if s.Clusters < 1 || s.Clusters > 9 {
		errs = append(errs, fmt.Errorf("clusters %d: accepted is 1 to 9", s.Clusters))
	}
	if s.Nodes < 1 || s.Nodes > 50 {
		errs = append(errs, fmt.Errorf("nodes %d: accepted is 1 to 50 per cluster", s.Nodes))
	}
	switch s.Routing {
	case RoutingTunnel, RoutingNative:
	default:
		errs = append(errs, fmt.Errorf("routing mode %q: accepted are %q and %q", s.Routing, RoutingTunnel, RoutingNative))
	}
	switch s.KVStore {
	case StoreEtcd, StoreConsul:
	default:
		errs = append(errs, fmt.Errorf("kvstore %q: accepted are %q and %q", s.KVStore, StoreEtcd, StoreConsul))
	}
	switch {
	case s.StoreMembers != 0 && s.StoreMembers != 1 && s.StoreMembers != 3:
		errs = append(errs, fmt.Errorf("store members %d: accepted are 1 and 3", s.StoreMembers))
	case s.StoreMembers == 3 && s.KVStore != StoreEtcd:
		errs = append(errs, fmt.Errorf("store members 3: only an etcd store has several members, not %q", s.KVStore))
	}
	if s.OverlappingPodCIDRs && s.Routing != RoutingTunnel {
		errs = append(errs, fmt.Errorf("overlapping pod CIDRs with %s routing: global addresses are translated only in tunnel routing; use --routing tunnel", s.Routing))
	}
	if s.LeaseTTL < 0 {
		errs = append(errs, fmt.Errorf("lease TTL %v: must not be negative", s.LeaseTTL))
	}
	return errors.Join(errs...)
}

// progress returns the writer for step lines.
func (s *Spec) progress() io.Writer {
	if s.Progress == nil {
		return io.Discard
	}
	return s.Progress
}

func (s *Spec) logger() *slog.Logger {
	if s.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return s.Log
}

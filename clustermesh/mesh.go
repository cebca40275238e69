package clustermesh

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/weftnet/weft/state/records"
)

// ErrIncompatible marks clusters that cannot be connected.
var ErrIncompatible = errors.New("clusters cannot be connected")

// Info is what a cluster tells others about itself.
type Info struct {
	Name      string
	ID        uint32
	Routing   string
	PodCIDRs  []netip.Prefix
	CA        string   // PEM of the CA that signs the store's certificate
	Endpoints []string // the store remote clusters read
	// Relay is host:port of the cluster's flow relay (weft-apiserver
	// --relay-listen; mutual TLS, the serving certificate): connected
	// clusters' relays read it. Empty: the cluster serves no relay.
	Relay string `json:",omitempty"`
	// GlobalCIDR is the cluster's global addressing range (zero: off): with
	// it, the cluster may share pod CIDRs with other clusters that have
	// one too (records.GlobalAddr).
	GlobalCIDR netip.Prefix `json:",omitzero"`
	// ServiceCIDRs are where the cluster's ClusterIPs come from; no other
	// cluster's global CIDR may overlap them.
	ServiceCIDRs []netip.Prefix `json:",omitempty"`
}

// Validate checks the name, id and routing mode of one cluster.
func (i Info) Validate() error {
	if err := records.ValidateMeshClusterName(i.Name); err != nil {
		return err
	}
	if err := records.ValidateClusterID(i.ID); err != nil {
		return fmt.Errorf("cluster %s: %w", i.Name, err)
	}
	if i.Routing != records.RoutingTunnel && i.Routing != records.RoutingNative {
		return fmt.Errorf("cluster %s: routing mode %q: accepted are %q and %q", i.Name, i.Routing, records.RoutingTunnel, records.RoutingNative)
	}
	if i.GlobalCIDR.IsValid() {
		if err := records.ValidateGlobalCIDR(i.GlobalCIDR, i.PodCIDRs, i.ServiceCIDRs); err != nil {
			return fmt.Errorf("cluster %s: %w", i.Name, err)
		}
	}
	return nil
}

// Global reports whether the cluster has global addressing.
func (i Info) Global() bool { return i.GlobalCIDR.IsValid() }

// rangeConflict says how the address ranges of a and b conflict, naming
// both clusters and both ranges, or "" when they can share a mesh: pod
// CIDRs may overlap only when both clusters have global addressing; a
// global CIDR may overlap no global, pod or service CIDR of the other.
func rangeConflict(a, b Info) string {
	if a.Global() && b.Global() && a.GlobalCIDR.Overlaps(b.GlobalCIDR) {
		return fmt.Sprintf("global CIDRs overlap (%s: %v, %s: %v); give every cluster its own global CIDR", a.Name, a.GlobalCIDR, b.Name, b.GlobalCIDR)
	}
	for _, x := range [][2]Info{{a, b}, {b, a}} {
		g, o := x[0], x[1]
		if !g.Global() {
			continue
		}
		for _, p := range o.PodCIDRs {
			if g.GlobalCIDR.Overlaps(p) {
				return fmt.Sprintf("global CIDR %v of %s overlaps pod CIDR %v of %s; choose a global CIDR outside every connected cluster's pod and service CIDRs", g.GlobalCIDR, g.Name, p, o.Name)
			}
		}
		for _, p := range o.ServiceCIDRs {
			if g.GlobalCIDR.Overlaps(p) {
				return fmt.Sprintf("global CIDR %v of %s overlaps service CIDR %v of %s; choose a global CIDR outside every connected cluster's pod and service CIDRs", g.GlobalCIDR, g.Name, p, o.Name)
			}
		}
	}
	for _, p := range a.PodCIDRs {
		for _, q := range b.PodCIDRs {
			if p.Overlaps(q) {
				switch {
				case !a.Global() || !b.Global():
					return fmt.Sprintf("pod CIDRs overlap (%s: %v, %s: %v) and %s; give the clusters disjoint pools, or enable global addressing on both (weft-apiserver --global-cidr)", a.Name, p, b.Name, q, withoutGlobal(a, b))
				case a.Routing != records.RoutingTunnel || b.Routing != records.RoutingTunnel:
					return fmt.Sprintf("pod CIDRs overlap (%s: %v, %s: %v) in %s routing; the datapath translates global addresses only in tunnel routing: give the clusters disjoint pools or use tunnel routing", a.Name, p, b.Name, q, a.Routing)
				}
				return ""
			}
		}
	}
	return ""
}

// withoutGlobal says which of a and b lack global addressing.
func withoutGlobal(a, b Info) string {
	switch {
	case !a.Global() && !b.Global():
		return "neither has global addressing"
	case !a.Global():
		return a.Name + " has no global addressing"
	}
	return b.Name + " has no global addressing"
}

// CheckPair says why a and b cannot be connected, or nil.
func CheckPair(a, b Info) error {
	if err := a.Validate(); err != nil {
		return err
	}
	if err := b.Validate(); err != nil {
		return err
	}
	switch {
	case a.Name == b.Name:
		return fmt.Errorf("connect %s and %s: %w: both clusters are named %q; every cluster in a mesh needs its own name", a.Name, b.Name, ErrIncompatible, a.Name)
	case a.ID == b.ID:
		return fmt.Errorf("connect %s and %s: %w: both have cluster id %d; every cluster in a mesh needs its own id (1-255)", a.Name, b.Name, ErrIncompatible, a.ID)
	case a.Routing != b.Routing:
		return fmt.Errorf("connect %s and %s: %w: routing modes differ (%s: %s, %s: %s); a mesh uses one routing mode", a.Name, b.Name, ErrIncompatible, a.Name, a.Routing, b.Name, b.Routing)
	}
	if c := rangeConflict(a, b); c != "" {
		return fmt.Errorf("connect %s and %s: %w: %s", a.Name, b.Name, ErrIncompatible, c)
	}
	return nil
}

// CheckJoin says why cand cannot become a remote of local, which already
// has remotes (cand itself may be among them: reconnecting is fine).
func CheckJoin(local Info, remotes []Info, cand Info) error {
	if err := CheckPair(local, cand); err != nil {
		return err
	}
	for _, r := range remotes {
		if r.Name == cand.Name {
			continue
		}
		if r.ID == cand.ID {
			return fmt.Errorf("connect %s to %s: %w: cluster id %d is already used by %s, connected to %s", cand.Name, local.Name, ErrIncompatible, cand.ID, r.Name, local.Name)
		}
		if c := rangeConflict(cand, r); c != "" {
			return fmt.Errorf("connect %s to %s: %w: %s (%s is connected to %s)", cand.Name, local.Name, ErrIncompatible, c, r.Name, local.Name)
		}
	}
	return nil
}

// AcceptIdentity reports whether a remote cluster with clusterID may
// announce id: a reserved identity or one of its own cluster-scoped range
// clusterID<<16 | 256..65535.
func AcceptIdentity(clusterID uint32, id records.ID) bool {
	if id.IsReserved() {
		return true
	}
	return id.ClusterID() == clusterID && id.Local() >= records.MinClusterLocal && id.Local() <= records.MaxClusterLocal
}

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
	return nil
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
	for _, p := range a.PodCIDRs {
		for _, q := range b.PodCIDRs {
			if p.Overlaps(q) {
				return fmt.Errorf("connect %s and %s: %w: pod CIDRs overlap (%s: %v, %s: %v); give the clusters disjoint pools", a.Name, b.Name, ErrIncompatible, a.Name, p, b.Name, q)
			}
		}
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
		for _, p := range r.PodCIDRs {
			for _, q := range cand.PodCIDRs {
				if p.Overlaps(q) {
					return fmt.Errorf("connect %s to %s: %w: pod CIDR %v overlaps %v of %s, connected to %s", cand.Name, local.Name, ErrIncompatible, q, p, r.Name, local.Name)
				}
			}
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

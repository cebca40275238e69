package records

import (
	"fmt"
	"net/netip"
	"strings"
)

// Node is the value of state/nodes/v1/<cluster>/<node>, bound to the node
// agent's lease. STABLE (v1).
type Node struct {
	Version   int            `json:"v"`
	Name      string         `json:"name"`
	Cluster   string         `json:"cluster"`
	ClusterID uint32         `json:"clusterID"`
	Underlay  []netip.Addr   `json:"underlayIPs"`
	PodCIDRs  []netip.Prefix `json:"podCIDRs,omitempty"`
	HealthIP  netip.Addr     `json:"healthIP,omitzero"`
	BootID    string         `json:"bootID,omitempty"`
}

// MaxNodeAddresses bounds the underlay addresses and pod CIDRs of a node.
const MaxNodeAddresses = 16

// Validate checks names, addresses and CIDRs.
func (n *Node) Validate() error {
	if err := ValidateNodeName(n.Name); err != nil {
		return err
	}
	if err := ValidateClusterName(n.Cluster); err != nil {
		return err
	}
	if err := ValidateClusterID(n.ClusterID); err != nil {
		return err
	}
	if len(n.Underlay) == 0 || len(n.Underlay) > MaxNodeAddresses {
		return fmt.Errorf("node %s: %w: needs 1 to %d underlay addresses, has %d", n.Name, ErrInvalid, MaxNodeAddresses, len(n.Underlay))
	}
	for _, a := range n.Underlay {
		if !a.IsValid() || a.IsUnspecified() || a.Zone() != "" {
			return fmt.Errorf("node %s: %w: underlay address %v is not a unicast address", n.Name, ErrInvalid, a)
		}
	}
	if len(n.PodCIDRs) > MaxNodeAddresses {
		return fmt.Errorf("node %s: %w: at most %d pod CIDRs, has %d", n.Name, ErrInvalid, MaxNodeAddresses, len(n.PodCIDRs))
	}
	for _, p := range n.PodCIDRs {
		if !p.IsValid() || p != p.Masked() {
			return fmt.Errorf("node %s: %w: pod CIDR %v is not a masked prefix", n.Name, ErrInvalid, p)
		}
	}
	if n.HealthIP.IsValid() && n.HealthIP.Zone() != "" {
		return fmt.Errorf("node %s: %w: health IP %v has a zone", n.Name, ErrInvalid, n.HealthIP)
	}
	if len(n.BootID) > 128 {
		return fmt.Errorf("node %s: %w: boot id longer than 128 bytes", n.Name, ErrInvalid)
	}
	return nil
}

// DecodeNode decodes the value of key and checks it matches the key.
func (k Keys) DecodeNode(key string, value []byte) (Node, error) {
	cluster, name, err := k.ParseNodeKey(key)
	if err != nil {
		return Node{}, err
	}
	var n Node
	if err := decode(key, value, MaxSmallRecord, &n); err != nil {
		return Node{}, err
	}
	if n.Cluster != cluster {
		return Node{}, mismatch(key, "cluster", n.Cluster, cluster)
	}
	if n.Name != name {
		return Node{}, mismatch(key, "node name", n.Name, name)
	}
	return n, nil
}

// ParseNodeKey returns the cluster and node name of a node key.
func (k Keys) ParseNodeKey(key string) (cluster, node string, err error) {
	t, err := k.tail(key, nodesDir)
	if err != nil {
		return "", "", err
	}
	cluster, node, ok := strings.Cut(t, "/")
	if !ok || ValidateClusterName(cluster) != nil || ValidateNodeName(node) != nil {
		return "", "", fmt.Errorf("parse key %q: %w: expected <cluster>/<node> with a valid cluster and node name", key, ErrInvalid)
	}
	return cluster, node, nil
}

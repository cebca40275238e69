package records

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
)

// Routing modes of a cluster.
const (
	RoutingTunnel = "tunnel"
	RoutingNative = "native"
)

// ClusterConfig is the value of cluster-config/<cluster>, written by the
// apiserver. STABLE (v1).
type ClusterConfig struct {
	Version      int            `json:"v"`
	Name         string         `json:"name"`
	ID           uint32         `json:"id"`
	Capabilities []string       `json:"capabilities,omitempty"`
	PodCIDRs     []netip.Prefix `json:"podCIDRs"`
	// PodCIDRMaskSize is the size of the CIDR each node takes from PodCIDRs
	// (one per address family that has a pool).
	PodCIDRMaskSize   int    `json:"podCIDRMaskSize"`
	PodCIDRMaskSizeV6 int    `json:"podCIDRMaskSizeV6,omitempty"`
	Routing           string `json:"routing"`
	// GlobalCIDR is the cluster's global addressing range: each pod
	// address of the IPv4 pool has one address in it (GlobalAddr), so
	// clusters whose pod CIDRs overlap can reach each other's pods. Zero:
	// global addressing is off. Added compatibly in v1: readers that do not
	// know it ignore it.
	GlobalCIDR netip.Prefix `json:"globalCIDR,omitzero"`
	// ServiceCIDRs are where the cluster's ClusterIPs come from (added
	// compatibly in v1; empty when the writer did not say).
	ServiceCIDRs []netip.Prefix `json:"serviceCIDRs,omitempty"`
}

// Validate checks the name, id, pools and routing mode.
func (c *ClusterConfig) Validate() error {
	if err := ValidateClusterName(c.Name); err != nil {
		return err
	}
	if err := ValidateClusterID(c.ID); err != nil {
		return err
	}
	if len(c.Capabilities) > 64 {
		return fmt.Errorf("cluster %s: %w: at most 64 capabilities", c.Name, ErrInvalid)
	}
	for _, cp := range c.Capabilities {
		if !isDNSSubdomain(cp, 63) {
			return fmt.Errorf("cluster %s: %w: capability %q must be a lowercase word", c.Name, ErrInvalid, cp)
		}
	}
	if err := ValidatePool(c.PodCIDRs, c.PodCIDRMaskSize, c.PodCIDRMaskSizeV6); err != nil {
		return fmt.Errorf("cluster %s: %w", c.Name, err)
	}
	if c.Routing != RoutingTunnel && c.Routing != RoutingNative {
		return fmt.Errorf("cluster %s: %w: routing %q, accepted are %q and %q", c.Name, ErrInvalid, c.Routing, RoutingTunnel, RoutingNative)
	}
	if len(c.ServiceCIDRs) > 4 {
		return fmt.Errorf("cluster %s: %w: at most 4 service CIDRs", c.Name, ErrInvalid)
	}
	for _, p := range c.ServiceCIDRs {
		if !p.IsValid() || p != p.Masked() {
			return fmt.Errorf("cluster %s: service CIDR %v: %w: must be a masked prefix such as 10.96.0.0/16", c.Name, p, ErrInvalid)
		}
	}
	if c.GlobalCIDR.IsValid() {
		if err := ValidateGlobalCIDR(c.GlobalCIDR, c.PodCIDRs, c.ServiceCIDRs); err != nil {
			return fmt.Errorf("cluster %s: %w", c.Name, err)
		}
	}
	return nil
}

// ValidatePool checks a pod CIDR pool: masked, non-overlapping prefixes, each
// no longer than the mask size of its family; the mask size leaves room for
// at least 4 addresses per node.
func ValidatePool(pool []netip.Prefix, maskV4, maskV6 int) error {
	if len(pool) == 0 || len(pool) > 64 {
		return fmt.Errorf("pod CIDR pool %v: %w: give 1 to 64 prefixes", pool, ErrInvalid)
	}
	for i, p := range pool {
		if !p.IsValid() || p != p.Masked() {
			return fmt.Errorf("pod CIDR %v: %w: must be a masked prefix such as 10.100.0.0/16", p, ErrInvalid)
		}
		mask, maxMask := maskV4, 30
		if p.Addr().Is6() {
			mask, maxMask = maskV6, 126
		}
		if mask < p.Bits() || mask > maxMask || mask == 0 {
			return fmt.Errorf("pod CIDR %v: %w: node mask size /%d must be between /%d and /%d", p, ErrInvalid, mask, p.Bits(), maxMask)
		}
		for _, q := range pool[:i] {
			if p.Overlaps(q) {
				return fmt.Errorf("pod CIDR %v: %w: overlaps %v", p, ErrInvalid, q)
			}
		}
	}
	return nil
}

// HasCapability reports whether the cluster announces capability c.
func (c *ClusterConfig) HasCapability(cp string) bool { return slices.Contains(c.Capabilities, cp) }

// DecodeClusterConfig decodes the value of key and checks it matches the key.
func (k Keys) DecodeClusterConfig(key string, value []byte) (ClusterConfig, error) {
	name, err := k.tail(key, clusterConfigDir)
	if err != nil {
		return ClusterConfig{}, err
	}
	var c ClusterConfig
	if err := decode(key, value, MaxSmallRecord, &c); err != nil {
		return ClusterConfig{}, err
	}
	if c.Name != name || strings.Contains(name, "/") {
		return ClusterConfig{}, mismatch(key, "cluster", c.Name, name)
	}
	return c, nil
}

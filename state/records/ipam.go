package records

import (
	"fmt"
	"net/netip"
	"strings"
)

// PodCIDR is the value of ipam/v1/<cluster>/<cidr>: the node that owns the
// CIDR. It is taken by compare-and-swap and freed when the node is deleted.
// STABLE (v1).
type PodCIDR struct {
	Version int          `json:"v"`
	CIDR    netip.Prefix `json:"cidr"`
	Node    string       `json:"node"`
}

// Validate checks the CIDR and node name.
func (p *PodCIDR) Validate() error {
	if !p.CIDR.IsValid() || p.CIDR != p.CIDR.Masked() {
		return fmt.Errorf("pod CIDR %v: %w: must be a masked prefix", p.CIDR, ErrInvalid)
	}
	return ValidateNodeName(p.Node)
}

// DecodePodCIDR decodes the value of key and checks it matches the key.
func (k Keys) DecodePodCIDR(key string, value []byte) (PodCIDR, error) {
	_, cidr, err := k.ParseIPAMKey(key)
	if err != nil {
		return PodCIDR{}, err
	}
	var p PodCIDR
	if err := decode(key, value, MaxSmallRecord, &p); err != nil {
		return PodCIDR{}, err
	}
	if p.CIDR != cidr {
		return PodCIDR{}, mismatch(key, "cidr", p.CIDR.String(), cidr.String())
	}
	return p, nil
}

// ParseIPAMKey returns the cluster and CIDR of an ipam key.
func (k Keys) ParseIPAMKey(key string) (string, netip.Prefix, error) {
	t, err := k.tail(key, ipamDir)
	if err != nil {
		return "", netip.Prefix{}, err
	}
	cluster, s, ok := strings.Cut(t, "/")
	if !ok || ValidateClusterName(cluster) != nil {
		return "", netip.Prefix{}, fmt.Errorf("parse key %q: %w: expected <cluster>/<cidr>", key, ErrInvalid)
	}
	p, err := ParseCIDRKey(s)
	if err != nil {
		return "", netip.Prefix{}, fmt.Errorf("parse key %q: %w", key, err)
	}
	return cluster, p, nil
}

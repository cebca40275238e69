package podcidr

import (
	"fmt"
	"math/big"
	"net/netip"

	"github.com/weftnet/weft/state/records"
)

// Config of an Allocator.
type Config struct {
	Cluster    string
	Pool       []netip.Prefix // e.g. 10.100.0.0/16
	MaskSize   int            // IPv4 node CIDR size, e.g. 24
	MaskSizeV6 int            // IPv6 node CIDR size, e.g. 64
}

// DefaultConfig is 10.100.0.0/16 cut into /24s.
func DefaultConfig() Config {
	return Config{Pool: []netip.Prefix{netip.MustParsePrefix("10.100.0.0/16")}, MaskSize: 24, MaskSizeV6: 64}
}

// Validate checks the cluster name and the pool.
func (c *Config) Validate() error {
	if err := records.ValidateClusterName(c.Cluster); err != nil {
		return fmt.Errorf("pod CIDR allocator: %w", err)
	}
	if err := records.ValidatePool(c.Pool, c.MaskSize, c.MaskSizeV6); err != nil {
		return fmt.Errorf("pod CIDR allocator: %w", err)
	}
	return nil
}

// ConfigFrom takes the pool from a cluster's stored configuration.
func ConfigFrom(cc records.ClusterConfig) Config {
	return Config{Cluster: cc.Name, Pool: cc.PodCIDRs, MaskSize: cc.PodCIDRMaskSize, MaskSizeV6: cc.PodCIDRMaskSizeV6}
}

// maskFor is the node CIDR size for p's family.
func (c *Config) maskFor(p netip.Prefix) int {
	if p.Addr().Is6() {
		return c.MaskSizeV6
	}
	return c.MaskSize
}

// count is how many subnets of size mask p holds (capped at 1<<62).
func count(p netip.Prefix, mask int) uint64 {
	d := mask - p.Bits()
	if d >= 62 {
		return 1 << 62
	}
	return 1 << d
}

// subnet returns the i-th subnet of size mask in p.
func subnet(p netip.Prefix, mask int, i uint64) netip.Prefix {
	a := p.Addr()
	bits := a.BitLen()
	b := a.AsSlice()
	n := new(big.Int).SetBytes(b)
	off := new(big.Int).Lsh(new(big.Int).SetUint64(i), uint(bits-mask))
	n.Add(n, off)
	out := make([]byte, len(b))
	n.FillBytes(out)
	addr, _ := netip.AddrFromSlice(out)
	return netip.PrefixFrom(addr, mask)
}

package datapath

import (
	"fmt"
	"net/netip"

	"github.com/weftnet/weft/datapath/bpf"
)

// SetGlobal turns the global-address translation on (docs/clustermesh.md,
// "Global addressing"): pods' packets to pods of other clusters leave with
// their global address (pool offset onto global), packets from the overlay
// to global are delivered to the pod address. pool must be one IPv4
// prefix no larger than global; a zero global turns translation off.
func (d *Datapath) SetGlobal(global, pool netip.Prefix, clusterID uint32) error {
	gc := bpf.GlobalConfig{}
	if global.IsValid() {
		if !global.Addr().Is4() || !pool.Addr().Is4() || global.Bits() > pool.Bits() {
			return fmt.Errorf("global addressing: global CIDR %v and pod pool %v: want IPv4 prefixes, the global one at least as large", global, pool)
		}
		gc = bpf.GlobalConfig{Global: be32(global.Masked().Addr()), Pool: be32(pool.Masked().Addr()),
			Mask: be32(netmask4(pool.Bits())), ClusterId: clusterID, Enabled: 1}
	}
	if err := d.objs.WeftGlobal.Put(uint32(0), gc); err != nil {
		return fmt.Errorf("write global addressing config: %w", err)
	}
	return nil
}

// netmask4 is the IPv4 netmask of a prefix length.
func netmask4(bits int) netip.Addr {
	m := ^uint32(0) << (32 - bits)
	if bits == 0 {
		m = 0
	}
	return netip.AddrFrom4([4]byte{byte(m >> 24), byte(m >> 16), byte(m >> 8), byte(m)})
}

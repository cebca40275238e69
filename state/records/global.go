package records

import (
	"encoding/binary"
	"fmt"
	"net/netip"
)

// Global addressing: a cluster with a global CIDR gives every address of
// its IPv4 pod CIDR pool one address of the global CIDR, by position. The
// pool's IPv4 prefixes are laid end to end in the order configured; an
// address at offset n of that sequence has the global address
// GlobalCIDR.Addr() + n. The mapping needs no store state, is the same on
// every node and across restarts, and never gives two pods one address; it
// stays stable while prefixes are only appended to the pool.

// ValidateGlobalCIDR checks a cluster's global CIDR: a masked IPv4 prefix
// large enough for the IPv4 addresses of pool, overlapping neither pool nor
// the cluster's service CIDRs.
func ValidateGlobalCIDR(g netip.Prefix, pool, services []netip.Prefix) error {
	if !g.IsValid() || !g.Addr().Is4() || g != g.Masked() || g.Bits() < 1 {
		return fmt.Errorf("global CIDR %v: %w: must be a masked IPv4 prefix such as 242.1.0.0/16", g, ErrInvalid)
	}
	var need uint64
	for _, p := range pool {
		if p.Overlaps(g) {
			return fmt.Errorf("global CIDR %v: %w: overlaps the cluster's pod CIDR %v", g, ErrInvalid, p)
		}
		if p.Addr().Is4() {
			need += size4(p)
		}
	}
	for _, p := range services {
		if p.Overlaps(g) {
			return fmt.Errorf("global CIDR %v: %w: overlaps the cluster's service CIDR %v", g, ErrInvalid, p)
		}
	}
	if have := size4(g); have < need {
		return fmt.Errorf("global CIDR %v: %w: %d addresses, the IPv4 pod CIDR pool %v has %d; give a prefix of at least the pool's size", g, ErrInvalid, have, pool, need)
	}
	return nil
}

// GlobalAddr is the global address of pod address ip, or false when ip is
// not an IPv4 address of pool or global is unset.
func GlobalAddr(global netip.Prefix, pool []netip.Prefix, ip netip.Addr) (netip.Addr, bool) {
	if !global.IsValid() || !ip.Is4() {
		return netip.Addr{}, false
	}
	var off uint64
	for _, p := range pool {
		if !p.Addr().Is4() {
			continue
		}
		if p.Contains(ip) {
			n := off + uint64(u32(ip)-u32(p.Addr()))
			if n >= size4(global) {
				return netip.Addr{}, false
			}
			return addr4(u32(global.Addr()) + uint32(n)), true
		}
		off += size4(p)
	}
	return netip.Addr{}, false
}

// PodAddr is the pod address whose global address is g: the inverse of
// GlobalAddr, false when g is outside global or maps past the pool.
func PodAddr(global netip.Prefix, pool []netip.Prefix, g netip.Addr) (netip.Addr, bool) {
	if !global.IsValid() || !g.Is4() || !global.Contains(g) {
		return netip.Addr{}, false
	}
	n := uint64(u32(g) - u32(global.Addr()))
	for _, p := range pool {
		if !p.Addr().Is4() {
			continue
		}
		if n < size4(p) {
			return addr4(u32(p.Addr()) + uint32(n)), true
		}
		n -= size4(p)
	}
	return netip.Addr{}, false
}

func size4(p netip.Prefix) uint64 { return 1 << (32 - p.Bits()) }

func u32(a netip.Addr) uint32 {
	b := a.As4()
	return binary.BigEndian.Uint32(b[:])
}

func addr4(v uint32) netip.Addr {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], v)
	return netip.AddrFrom4(b)
}

// GlobalPrefix is the global range of p, a prefix inside one IPv4 prefix
// of pool (a node's pod CIDR): the prefix of the same length at p's global
// address, false when p has none or its global addresses do not form an
// aligned prefix (pool prefixes laid end to end out of alignment).
func GlobalPrefix(global netip.Prefix, pool []netip.Prefix, p netip.Prefix) (netip.Prefix, bool) {
	if !p.Addr().Is4() {
		return netip.Prefix{}, false
	}
	first, ok := GlobalAddr(global, pool, p.Addr())
	if !ok {
		return netip.Prefix{}, false
	}
	lastPod := addr4(u32(p.Addr()) + uint32(size4(p)-1))
	last, ok := GlobalAddr(global, pool, lastPod)
	g := netip.PrefixFrom(first, p.Bits())
	if !ok || g.Masked() != g || uint64(u32(last)-u32(first)) != size4(p)-1 {
		return netip.Prefix{}, false
	}
	return g, true
}

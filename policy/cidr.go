package policy

import (
	"cmp"
	"net/netip"
	"slices"

	"github.com/weftnet/weft/state/records"
)

// CIDRIdentityBase is the start of the node-local CIDR identities:
// CIDRIdentityBase | n, n from 1. Cluster identities are below 1<<24
// (cluster_id<<16 | n with cluster_id ≤ 255), so they never clash; CIDR
// identities never leave the node (they are not carried in the VNI).
const CIDRIdentityBase records.ID = 1 << 24

// maxCIDRIdentities bounds n.
const maxCIDRIdentities = 1<<24 - 1

// CIDRIdentities hands out node-local identities for CIDR prefixes,
// keeping a prefix's identity as long as the prefix is wanted. It is not
// safe for concurrent use.
type CIDRIdentities struct {
	byPrefix map[netip.Prefix]records.ID
	used     map[records.ID]bool
	next     uint32
}

// NewCIDRIdentities returns an empty allocator.
func NewCIDRIdentities() *CIDRIdentities {
	return &CIDRIdentities{byPrefix: map[netip.Prefix]records.ID{}, used: map[records.ID]bool{}, next: 1}
}

// Sync makes the allocated prefixes equal to want (/0 prefixes are world
// and get no identity) and returns the prefixes added and removed.
func (c *CIDRIdentities) Sync(want []netip.Prefix) (added, removed map[netip.Prefix]records.ID) {
	added, removed = map[netip.Prefix]records.ID{}, map[netip.Prefix]records.ID{}
	keep := map[netip.Prefix]bool{}
	for _, p := range want {
		if p.Bits() > 0 {
			keep[p.Masked()] = true
		}
	}
	for p, id := range c.byPrefix {
		if !keep[p] {
			removed[p] = id
			delete(c.byPrefix, p)
			delete(c.used, id)
		}
	}
	ps := make([]netip.Prefix, 0, len(keep))
	for p := range keep {
		ps = append(ps, p)
	}
	slices.SortFunc(ps, func(a, b netip.Prefix) int {
		return cmp.Or(a.Addr().Compare(b.Addr()), cmp.Compare(a.Bits(), b.Bits()))
	})
	for _, p := range ps {
		if _, ok := c.byPrefix[p]; ok {
			continue
		}
		id := c.alloc()
		if id == 0 {
			break // 16M prefixes: the ipcache is full long before
		}
		c.byPrefix[p] = id
		added[p] = id
	}
	return added, removed
}

func (c *CIDRIdentities) alloc() records.ID {
	for range maxCIDRIdentities {
		n := c.next
		c.next = c.next%maxCIDRIdentities + 1
		id := CIDRIdentityBase | records.ID(n)
		if !c.used[id] {
			c.used[id] = true
			return id
		}
	}
	return 0
}

// Longest returns the identity of the longest prefix holding ip; ok is
// false when none does.
func (c *CIDRIdentities) Longest(ip netip.Addr) (id records.ID, ok bool) {
	best := -1
	for p, pid := range c.byPrefix {
		if p.Bits() > best && p.Contains(ip) {
			best, id = p.Bits(), pid
		}
	}
	return id, best >= 0
}

// All returns every allocated prefix and its identity.
func (c *CIDRIdentities) All() map[netip.Prefix]records.ID {
	out := make(map[netip.Prefix]records.ID, len(c.byPrefix))
	for p, id := range c.byPrefix {
		out[p] = id
	}
	return out
}

// IsCIDRIdentity reports whether id is a node-local CIDR identity.
func IsCIDRIdentity(id records.ID) bool { return id&CIDRIdentityBase != 0 }

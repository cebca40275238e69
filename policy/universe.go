package policy

import (
	"net/netip"

	"github.com/weftnet/weft/fqdn"
	"github.com/weftnet/weft/state/records"
)

// reservedIDs are the identities every node knows without the store.
var reservedIDs = []records.ID{records.IDHost, records.IDWorld, records.IDUnmanaged, records.IDHealth, records.IDRemoteNode}

type idSet map[records.ID]struct{}

// Universe is the set of identities policies can select: the cluster's
// identities (from the store), the reserved ones, and the node's CIDR
// identities. It caches which identities each endpoint selector selects
// and keeps those sets current as identities come and go, so recomputing
// an endpoint's policy after a change costs a union, not a rescan.
// It is not safe for concurrent use.
type Universe struct {
	// local is the cluster id of the entity "cluster" (0: every cluster).
	local uint32
	ids   map[records.ID]records.Labels
	cidrs map[netip.Prefix]records.ID
	cache map[string]*selection
	// fqdnIPs gives the addresses learnt for the names of a toFQDNs
	// selector (nil: none).
	fqdnIPs func(*fqdn.Matcher) []netip.Addr
}

// SetFQDNLookup says where toFQDNs peers find their addresses (the
// node's FQDN cache); their CIDR identities (/32) must be among the
// universe's CIDRs (SetCIDRs) for the peer to select them.
func (u *Universe) SetFQDNLookup(lookup func(*fqdn.Matcher) []netip.Addr) { u.fqdnIPs = lookup }

// fqdnIDs adds the CIDR identities of the addresses learnt for m.
func (u *Universe) fqdnIDs(m *fqdn.Matcher, add func(records.ID)) {
	if u.fqdnIPs == nil {
		return
	}
	for _, ip := range u.fqdnIPs(m) {
		if id, ok := u.cidrs[netip.PrefixFrom(ip, ip.BitLen())]; ok {
			add(id)
		}
	}
}

// selection is a cached selector and the identities it selects.
type selection struct {
	sel  Selector
	ids  idSet
	used bool // since the last PruneSelectors
}

// NewUniverse returns a universe holding the reserved identities.
func NewUniverse() *Universe {
	u := &Universe{ids: map[records.ID]records.Labels{}, cidrs: map[netip.Prefix]records.ID{}, cache: map[string]*selection{}}
	return u
}

// SetLocalCluster limits the entity "cluster" to the identities of
// cluster id (other clusters' identities arrive through clustermesh).
func (u *Universe) SetLocalCluster(id uint32) { u.local = id }

// Upsert adds or changes a cluster identity and reports whether anything
// changed.
func (u *Universe) Upsert(id records.ID, ls records.Labels) bool {
	if id.IsReserved() {
		return false
	}
	if old, ok := u.ids[id]; ok && old.Equal(ls) {
		return false
	}
	u.ids[id] = ls
	for _, c := range u.cache {
		if c.sel.Matches(ls) {
			c.ids[id] = struct{}{}
		} else {
			delete(c.ids, id)
		}
	}
	return true
}

// Delete removes a cluster identity and reports whether it was known.
func (u *Universe) Delete(id records.ID) bool {
	if _, ok := u.ids[id]; !ok {
		return false
	}
	delete(u.ids, id)
	for _, c := range u.cache {
		delete(c.ids, id)
	}
	return true
}

// Len is the number of cluster identities.
func (u *Universe) Len() int { return len(u.ids) }

// SetCIDRs replaces the node's CIDR identities.
func (u *Universe) SetCIDRs(m map[netip.Prefix]records.ID) {
	u.cidrs = make(map[netip.Prefix]records.ID, len(m))
	for p, id := range m {
		u.cidrs[p] = id
	}
}

// Labels returns the labels of an identity for display: reserved and
// cluster identities by their labels, CIDR identities as cidr:<prefix>.
func (u *Universe) Labels(id records.ID) []string {
	if ls, ok := records.ReservedLabels(id); ok {
		return ls.Display()
	}
	if ls, ok := u.ids[id]; ok {
		return ls.Display()
	}
	for p, cid := range u.cidrs {
		if cid == id {
			return []string{"cidr:" + p.String()}
		}
	}
	return nil
}

// ForgetSelectors empties the selector cache.
func (u *Universe) ForgetSelectors() { u.cache = map[string]*selection{} }

// PruneSelectors drops the cached selectors not used since the last call
// (those of policies gone or no longer selecting a local endpoint). The
// cache stays valid across policy changes: a selection depends only on
// the identities.
func (u *Universe) PruneSelectors() {
	for k, c := range u.cache {
		if !c.used {
			delete(u.cache, k)
		}
		c.used = false
	}
}

// selectEndpoints returns the identities sel selects, from the cache. An
// empty selector selects the cluster's identities; one with requirements
// also reserved identities whose labels match (reserved:host).
func (u *Universe) selectEndpoints(sel Selector) idSet {
	key := sel.String()
	if c, ok := u.cache[key]; ok {
		c.used = true
		return c.ids
	}
	set := idSet{}
	for id, ls := range u.ids {
		if sel.Matches(ls) {
			set[id] = struct{}{}
		}
	}
	if len(sel.Requirements) > 0 {
		for _, id := range reservedIDs {
			if ls, _ := records.ReservedLabels(id); sel.Matches(ls) {
				set[id] = struct{}{}
			}
		}
	}
	u.cache[key] = &selection{sel: sel, ids: set, used: true}
	return set
}

// clusterIDs are the identities of the entity "cluster".
func (u *Universe) clusterIDs(add func(records.ID)) {
	for id := range u.ids {
		if u.local == 0 || id.ClusterID() == u.local {
			add(id)
		}
	}
	for _, id := range []records.ID{records.IDHost, records.IDRemoteNode, records.IDHealth, records.IDUnmanaged} {
		add(id)
	}
}

// cidrIDs adds the CIDR identities a CIDR rule selects: those of prefixes
// within it and not within one of its except prefixes. A rule covering
// everything (0.0.0.0/0) also selects world.
func (u *Universe) cidrIDs(r *CIDRRule, add func(records.ID)) {
	if r.Prefix.Bits() == 0 {
		add(records.IDWorld)
	}
	for p, id := range u.cidrs {
		if !within(p, r.Prefix) {
			continue
		}
		excepted := false
		for _, x := range r.Except {
			excepted = excepted || within(p, x)
		}
		if !excepted {
			add(id)
		}
	}
}

// within reports whether p lies inside outer.
func within(p, outer netip.Prefix) bool {
	return p.Bits() >= outer.Bits() && outer.Contains(p.Addr())
}

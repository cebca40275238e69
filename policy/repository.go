package policy

import (
	"net/netip"
	"slices"
	"strings"

	"github.com/weftnet/weft/fqdn"
)

// Repository holds the policies in force on a node, keyed by their store
// namespace and name. It is not safe for concurrent use.
type Repository struct {
	policies map[string]*Policy
	sorted   []*Policy // List's answer, nil after a change
	// selecting caches Selecting by the subject's labels.
	selecting map[string][]RuleRef
}

// NewRepository returns an empty repository.
func NewRepository() *Repository {
	return &Repository{policies: map[string]*Policy{}, selecting: map[string][]RuleRef{}}
}

func (r *Repository) changed() {
	r.sorted = nil
	clear(r.selecting)
}

func repoKey(storeNS, name string) string { return storeNS + "/" + name }

// Upsert adds or replaces p.
func (r *Repository) Upsert(p *Policy) {
	r.policies[repoKey(p.StoreNamespace(), p.Name)] = p
	r.changed()
}

// Delete removes the policy stored under storeNS/name and reports whether
// it was there.
func (r *Repository) Delete(storeNS, name string) bool {
	k := repoKey(storeNS, name)
	_, ok := r.policies[k]
	delete(r.policies, k)
	r.changed()
	return ok
}

// Get returns the policy stored under storeNS/name.
func (r *Repository) Get(storeNS, name string) (*Policy, bool) {
	p, ok := r.policies[repoKey(storeNS, name)]
	return p, ok
}

// List returns the policies sorted by store namespace and name; the
// caller must not change the slice.
func (r *Repository) List() []*Policy {
	if r.sorted != nil {
		return r.sorted
	}
	out := make([]*Policy, 0, len(r.policies))
	for _, p := range r.policies {
		out = append(out, p)
	}
	slices.SortFunc(out, func(a, b *Policy) int {
		return strings.Compare(repoKey(a.StoreNamespace(), a.Name), repoKey(b.StoreNamespace(), b.Name))
	})
	r.sorted = out
	return out
}

// Len is the number of policies.
func (r *Repository) Len() int { return len(r.policies) }

// Clone returns a repository holding the same policies, to try changes on.
func (r *Repository) Clone() *Repository {
	c := NewRepository()
	for k, p := range r.policies {
		c.policies[k] = p
	}
	return c
}

// Prefixes returns every CIDR prefix the policies need in the ipcache:
// each CIDR and each except prefix, sorted and without duplicates.
func (r *Repository) Prefixes() []netip.Prefix {
	seen := map[netip.Prefix]bool{}
	for _, p := range r.policies {
		for _, rule := range p.Rules {
			for _, pr := range slices.Concat(rule.Ingress, rule.Egress) {
				for _, peer := range pr.Peers {
					if peer.CIDR == nil {
						continue
					}
					seen[peer.CIDR.Prefix] = true
					for _, x := range peer.CIDR.Except {
						seen[x] = true
					}
				}
			}
		}
	}
	out := make([]netip.Prefix, 0, len(seen))
	for p := range seen {
		out = append(out, p)
	}
	slices.SortFunc(out, func(a, b netip.Prefix) int {
		if c := a.Addr().Compare(b.Addr()); c != 0 {
			return c
		}
		return a.Bits() - b.Bits()
	})
	return out
}

// FQDNMatchers are the toFQDNs selectors of every policy.
func (r *Repository) FQDNMatchers() []*fqdn.Matcher {
	var out []*fqdn.Matcher
	for _, p := range r.policies {
		for _, rule := range p.Rules {
			for _, pr := range rule.Egress {
				for _, peer := range pr.Peers {
					if peer.FQDN != nil {
						out = append(out, peer.FQDN)
					}
				}
			}
		}
	}
	return out
}

package policy

import (
	"cmp"
	"slices"

	"github.com/weftnet/weft/datapath"
	"github.com/weftnet/weft/state/records"
)

// RuleRef names one rule of a policy.
type RuleRef struct {
	Policy *Policy
	Index  int
}

// Result is the computed policy of one endpoint.
type Result struct {
	Policy datapath.Policy
	// Selected are the rules that select the endpoint, in policy order.
	Selected []RuleRef
}

// Entries is the number of datapath policy entries of the result.
func (r Result) Entries() int { return len(r.Policy.Ingress) + len(r.Policy.Egress) }

// Selecting returns the rules whose subject selects an endpoint of the
// given identity labels. The answer is cached until the policies change;
// the caller must not change it.
func (r *Repository) Selecting(subject records.Labels) []RuleRef {
	key := subject.String()
	if refs, ok := r.selecting[key]; ok {
		return refs
	}
	out := []RuleRef{}
	for _, p := range r.List() {
		for i, rule := range p.Rules {
			if rule.Subject.Matches(subject) {
				out = append(out, RuleRef{Policy: p, Index: i})
			}
		}
	}
	if len(r.selecting) > 4096 {
		clear(r.selecting) // bound the cache; endpoints are fewer
	}
	r.selecting[key] = out
	return out
}

// Compute returns the datapath policy of an endpoint with the given
// identity labels: the union of every selecting rule's allow and deny
// entries over the identities of u, with enforcement switched on in each
// direction some selecting rule enforces.
func (r *Repository) Compute(subject records.Labels, u *Universe) Result {
	res := Result{Selected: r.Selecting(subject)}
	ingress, egress := map[datapath.Rule]bool{}, map[datapath.Rule]bool{}
	for _, ref := range res.Selected {
		rule := ref.Policy.Rules[ref.Index]
		res.Policy.IngressEnforced = res.Policy.IngressEnforced || rule.IngressEnforced
		res.Policy.EgressEnforced = res.Policy.EgressEnforced || rule.EgressEnforced
		for _, pr := range rule.Ingress {
			expand(pr, u, ingress)
		}
		for _, pr := range rule.Egress {
			expand(pr, u, egress)
		}
	}
	if res.Policy.IngressEnforced {
		// The local host always reaches its endpoints (Cilium's default
		// allow-localhost=always: health and liveness probes keep working);
		// an explicit deny rule still wins.
		ingress[datapath.Rule{Identity: uint32(records.IDHost)}] = true
	}
	res.Policy.Ingress, res.Policy.Egress = sortedRules(ingress), sortedRules(egress)
	return res
}

// expand adds the datapath entries of one peer rule: every selected
// identity times every port.
func expand(pr PeerRule, u *Universe, out map[datapath.Rule]bool) {
	ids := peerIDs(pr, u)
	if len(ids) == 0 {
		return
	}
	// Ports with HTTP rules are opened only through the node's L7 proxy,
	// which decides each request (docs/l7.md): redirect entries, for TCP
	// (HTTP's only carrier).
	for _, h := range pr.HTTP {
		for _, pp := range h.Ports {
			for port := int(pp.Port); port <= max(int(pp.EndPort), int(pp.Port)); port++ {
				for id := range ids {
					out[datapath.Rule{Identity: uint32(id), Port: uint16(port), Proto: datapath.ProtoTCP, Redirect: true}] = true
				}
			}
		}
	}
	// Ports with DNS rules: their UDP queries only through the node's DNS
	// proxy (DNS over TCP is not proxied: closed).
	for _, d := range pr.DNS {
		for _, pp := range d.Ports {
			if pp.Proto != datapath.ProtoAny && pp.Proto != datapath.ProtoUDP {
				continue
			}
			for port := int(pp.Port); port <= max(int(pp.EndPort), int(pp.Port)); port++ {
				for id := range ids {
					out[datapath.Rule{Identity: uint32(id), Port: uint16(port), Proto: datapath.ProtoUDP, Redirect: true}] = true
				}
			}
		}
	}
	ports := pr.Ports
	if len(ports) == 0 && len(pr.HTTP)+len(pr.DNS) > 0 {
		return // every port of the rule has L7 rules
	}
	if len(ports) == 0 {
		ports = []PortRange{{}}
	}
	for _, pp := range ports {
		for port := int(pp.Port); port <= max(int(pp.EndPort), int(pp.Port)); port++ {
			protos := []uint8{pp.Proto}
			if pp.Proto == datapath.ProtoAny && port != 0 {
				// The datapath looks ports up with their protocol only.
				protos = []uint8{datapath.ProtoTCP, datapath.ProtoUDP}
			}
			for _, proto := range protos {
				for id := range ids {
					out[datapath.Rule{Identity: uint32(id), Port: uint16(port), Proto: proto, Deny: pr.Deny}] = true
				}
			}
		}
	}
}

// peerIDs are the identities a peer rule selects (0: any).
func peerIDs(pr PeerRule, u *Universe) idSet {
	ids := idSet{}
	add := func(id records.ID) { ids[id] = struct{}{} }
	if pr.AnyPeer {
		add(0)
	}
	for _, peer := range pr.Peers {
		switch {
		case peer.Endpoints != nil:
			for id := range u.selectEndpoints(*peer.Endpoints) {
				add(id)
			}
		case peer.CIDR != nil:
			u.cidrIDs(peer.CIDR, add)
		case peer.FQDN != nil:
			u.fqdnIDs(peer.FQDN, add)
		default:
			entityIDs(peer.Entity, u, add)
		}
	}
	return ids
}

// entityIDs adds the identities of a Cilium entity.
func entityIDs(entity string, u *Universe, add func(records.ID)) {
	switch entity {
	case "all":
		add(0)
	case "world", "world-ipv4":
		add(records.IDWorld)
		for _, id := range u.cidrs {
			add(id)
		}
	case "host":
		add(records.IDHost)
	case "remote-node":
		add(records.IDRemoteNode)
	case "health":
		add(records.IDHealth)
	case "unmanaged":
		add(records.IDUnmanaged)
	case "cluster":
		u.clusterIDs(add)
	}
}

func sortedRules(m map[datapath.Rule]bool) []datapath.Rule {
	out := make([]datapath.Rule, 0, len(m))
	for r := range m {
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b datapath.Rule) int {
		return cmp.Or(cmp.Compare(a.Identity, b.Identity), cmp.Compare(a.Port, b.Port), cmp.Compare(a.Proto, b.Proto),
			cmp.Compare(boolInt(a.Deny), boolInt(b.Deny)), cmp.Compare(boolInt(a.Redirect), boolInt(b.Redirect)))
	})
	return out
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

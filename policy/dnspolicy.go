package policy

import (
	"github.com/weftnet/weft/datapath"
	"github.com/weftnet/weft/fqdn"
	"github.com/weftnet/weft/state/records"
)

// DNSPolicy decides the DNS queries an endpoint sends on one UDP port, by
// the identity of the DNS server asked: a server gets the names of every
// egress allow rule selecting it (or any peer) with DNS rules on that
// port; an L3/L4 allow of the port for it lets every name through.
type DNSPolicy struct {
	peers map[records.ID][]*fqdn.Matcher // 0: the names for any peer
	all   map[records.ID]bool            // L3/L4 allows
	l4    func(peer records.ID) bool     // set: L4DNSPolicy
}

// L4DNSPolicy is the policy of a port that has no DNS rules (any more)
// while flows the datapath handed to the proxy before stay there: a server
// the L3/L4 policy allows now gets every query, others none.
func L4DNSPolicy(allows func(peer records.ID) bool) *DNSPolicy {
	return &DNSPolicy{l4: allows}
}

// Allows reports whether the endpoint may resolve name through a DNS
// server of identity peer.
func (d *DNSPolicy) Allows(peer records.ID, name string) bool {
	if d == nil {
		return false
	}
	if d.l4 != nil {
		return d.l4(peer)
	}
	if d.all[peer] || d.all[0] {
		return true
	}
	for _, id := range []records.ID{peer, 0} {
		for _, m := range d.peers[id] {
			if m.Match(name) {
				return true
			}
		}
	}
	return false
}

// ComputeDNS returns the DNS policies of an endpoint with the given
// identity labels, by egress UDP port: the ports whose queries the
// datapath hands to the node's DNS proxy.
func (r *Repository) ComputeDNS(subject records.Labels, u *Universe) map[uint16]*DNSPolicy {
	out := map[uint16]*DNSPolicy{}
	var l4 []datapath.Rule
	for _, ref := range r.Selecting(subject) {
		for _, pr := range ref.Policy.Rules[ref.Index].Egress {
			if pr.Deny {
				continue // the datapath drops it before the proxy
			}
			entries := map[datapath.Rule]bool{}
			expand(pr, u, entries)
			for e := range entries {
				if !e.Redirect {
					l4 = append(l4, e)
				}
			}
			if len(pr.DNS) == 0 {
				continue
			}
			ids := peerIDs(pr, u)
			for _, d := range pr.DNS {
				for _, pp := range d.Ports {
					if pp.Proto != datapath.ProtoAny && pp.Proto != datapath.ProtoUDP {
						continue
					}
					for port := int(pp.Port); port <= max(int(pp.EndPort), int(pp.Port)); port++ {
						p := out[uint16(port)]
						if p == nil {
							p = &DNSPolicy{peers: map[records.ID][]*fqdn.Matcher{}, all: map[records.ID]bool{}}
							out[uint16(port)] = p
						}
						for id := range ids {
							p.peers[id] = append(p.peers[id], d.Names...)
						}
					}
				}
			}
		}
	}
	for port, p := range out {
		for _, e := range l4 {
			if (e.Port == 0 || e.Port == port) && (e.Proto == 0 || e.Proto == datapath.ProtoUDP) {
				p.all[records.ID(e.Identity)] = true
			}
		}
	}
	return out
}

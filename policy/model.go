package policy

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/weftnet/weft/fqdn"
	"github.com/weftnet/weft/state/records"
)

// API versions and kinds accepted by Parse.
const (
	APIVersionCilium     = "cilium.io/v2"
	APIVersionKubernetes = "networking.k8s.io/v1"

	KindCilium            = "CiliumNetworkPolicy"
	KindCiliumClusterwide = "CiliumClusterwideNetworkPolicy"
	KindKubernetes        = "NetworkPolicy"
)

// Limits enforced on import.
const (
	// MaxPortRange is the largest number of ports one port/endPort range
	// may cover: the datapath holds one entry per port.
	MaxPortRange = 1024
	// MaxRulesPerEndpoint bounds the datapath entries of one endpoint.
	MaxRulesPerEndpoint = 65536
	// MaxPolicyEntries is the capacity of the node's policy map
	// (weft_policy, shared by all endpoints).
	MaxPolicyEntries = 262144
)

// Policy is one parsed and validated policy document.
type Policy struct {
	APIVersion string
	Kind       string
	// Namespace is empty for a clusterwide policy.
	Namespace string
	Name      string
	// Document is the original YAML of this document.
	Document string
	// Description is the document's top-level description, if any: it
	// documents the policy and changes nothing it enforces.
	Description string
	Rules       []Rule
}

// Clusterwide reports whether p is a CiliumClusterwideNetworkPolicy.
func (p *Policy) Clusterwide() bool { return p.Kind == KindCiliumClusterwide }

// Format is the records.PolicyRef format of p.
func (p *Policy) Format() string {
	if p.Kind == KindKubernetes {
		return records.PolicyFormatKubernetes
	}
	return records.PolicyFormatCilium
}

// StoreNamespace is the namespace segment p is stored under:
// records.PolicyClusterwide for clusterwide policies.
func (p *Policy) StoreNamespace() string {
	if p.Clusterwide() {
		return records.PolicyClusterwide
	}
	return p.Namespace
}

// ID is how p is named to users: namespace/name, or name for a
// clusterwide policy.
func (p *Policy) ID() string {
	if p.Clusterwide() {
		return p.Name
	}
	return p.Namespace + "/" + p.Name
}

// String is "apiVersion kind id", e.g. "cilium.io/v2 CiliumNetworkPolicy default/deathstar".
func (p *Policy) String() string { return p.APIVersion + " " + p.Kind + " " + p.ID() }

// Rule is one rule of a policy: the endpoints it applies to and what it
// allows or denies in each direction.
type Rule struct {
	// Subject selects the endpoints the rule applies to.
	Subject Selector
	// IngressEnforced and EgressEnforced switch default deny on for the
	// selected endpoints in that direction.
	IngressEnforced bool
	EgressEnforced  bool
	Ingress         []PeerRule
	Egress          []PeerRule
	Description     string
}

// PeerRule allows (or denies) traffic with a set of peers on a set of
// ports. No peers and not AnyPeer: the rule selects nothing (it only
// enforces default deny). No ports and no HTTP rules: every port and
// protocol.
type PeerRule struct {
	Deny bool
	// AnyPeer selects every identity (identity 0 in the datapath).
	AnyPeer bool
	Peers   []Peer
	// Ports are the ports allowed (or denied) at L3/L4.
	Ports []PortRange
	// HTTP are the ports whose requests must match HTTP rules (toPorts
	// entries with rules.http); their ports are not in Ports.
	HTTP []HTTPPortRule
	// DNS are the ports whose DNS queries must match DNS rules (egress
	// toPorts entries with rules.dns); their ports are not in Ports.
	DNS []DNSPortRule
	// Field is where the rule came from, e.g. spec.ingress[0].
	Field string
}

// Peer is one peer selector of a rule: exactly one of Endpoints, Entity,
// CIDR or FQDN is set.
type Peer struct {
	Endpoints *Selector
	Entity    string
	CIDR      *CIDRRule
	// FQDN (egress toFQDNs) selects the addresses the node's DNS proxy
	// learnt for the names it matches, while their TTL lasts.
	FQDN *fqdn.Matcher
}

// DNSPortRule is one egress toPorts entry with rules.dns: the names whose
// DNS queries on Ports may be resolved through the node's DNS proxy.
type DNSPortRule struct {
	Ports []PortRange
	Names []*fqdn.Matcher
	Field string
}

// CIDRRule selects the CIDR identities of Prefix and of prefixes within it,
// except those within one of Except.
type CIDRRule struct {
	Prefix netip.Prefix
	Except []netip.Prefix
}

// PortRange is Port..EndPort (EndPort 0: just Port) of Proto. Port 0:
// every port. Proto 0: TCP and UDP for a port, everything without one.
type PortRange struct {
	Port, EndPort uint16
	Proto         uint8
}

func (p PortRange) String() string {
	proto := protoName(p.Proto)
	switch {
	case p.Port == 0:
		return "any/" + proto
	case p.EndPort > p.Port:
		return fmt.Sprintf("%d-%d/%s", p.Port, p.EndPort, proto)
	}
	return fmt.Sprintf("%d/%s", p.Port, proto)
}

func protoName(p uint8) string {
	switch p {
	case 6:
		return "TCP"
	case 17:
		return "UDP"
	case 0:
		return "ANY"
	}
	return fmt.Sprintf("proto-%d", p)
}

// String describes the rule on one line: verdict, peers, ports.
func (pr PeerRule) String() string {
	verdict := "allow"
	if pr.Deny {
		verdict = "deny"
	}
	var peers []string
	if pr.AnyPeer {
		peers = append(peers, "any peer")
	}
	for _, p := range pr.Peers {
		peers = append(peers, p.String())
	}
	if len(peers) == 0 {
		peers = []string{"no peer"}
	}
	var ps []string
	for _, p := range pr.Ports {
		ps = append(ps, p.String())
	}
	for _, h := range pr.HTTP {
		rules := make([]string, len(h.HTTP))
		for i, r := range h.HTTP {
			rules[i] = r.String()
		}
		for _, p := range h.Ports {
			ps = append(ps, p.String()+" HTTP {"+strings.Join(rules, " | ")+"}")
		}
	}
	for _, d := range pr.DNS {
		names := make([]string, len(d.Names))
		for i, n := range d.Names {
			names[i] = n.Selector().String()
		}
		for _, p := range d.Ports {
			ps = append(ps, p.String()+" DNS {"+strings.Join(names, " | ")+"}")
		}
	}
	ports := "any port"
	if len(ps) > 0 {
		ports = strings.Join(ps, ", ")
	}
	return verdict + " " + strings.Join(peers, " | ") + " on " + ports
}

func (p Peer) String() string {
	switch {
	case p.Endpoints != nil:
		return "endpoints {" + p.Endpoints.String() + "}"
	case p.FQDN != nil:
		return "fqdn " + p.FQDN.Selector().String()
	case p.CIDR != nil:
		s := "cidr " + p.CIDR.Prefix.String()
		if len(p.CIDR.Except) > 0 {
			ex := make([]string, len(p.CIDR.Except))
			for i, x := range p.CIDR.Except {
				ex[i] = x.String()
			}
			s += " except " + strings.Join(ex, ", ")
		}
		return s
	}
	return "entity " + p.Entity
}

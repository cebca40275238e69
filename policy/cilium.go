package policy

import (
	"strings"

	"github.com/weftnet/weft/fqdn"
)

// Entities accepted in fromEntities/toEntities.
var entities = []string{"all", "world", "world-ipv4", "cluster", "host", "remote-node", "health", "unmanaged"}

// ciliumSpecs reads spec and/or specs of a Cilium policy.
func (d *decoder) ciliumSpecs(p *Policy, spec, specs any) {
	if spec == nil && specs == nil {
		d.fail("spec", "required: a %s needs spec or specs", p.Kind)
		return
	}
	if spec != nil {
		p.Rules = append(p.Rules, d.ciliumRule("spec", spec, p.Namespace))
	}
	for i, s := range d.list("specs", specs) {
		p.Rules = append(p.Rules, d.ciliumRule(index("specs", i), s, p.Namespace))
	}
}

func (d *decoder) ciliumRule(path string, v any, ns string) Rule {
	m := d.object(path, v, "endpointSelector", "nodeSelector", "ingress", "ingressDeny", "egress", "egressDeny",
		"labels", "description", "enableDefaultDeny")
	var r Rule
	if m == nil {
		d.fail(path, "expected an object with endpointSelector and ingress/egress rules")
		return r
	}
	if _, ok := m["nodeSelector"]; ok {
		d.fail(join(path, "nodeSelector"), "host policies are not supported yet; accepted is endpointSelector")
	}
	if v, ok := m["endpointSelector"]; !ok {
		d.fail(join(path, "endpointSelector"), "required: the endpoints the rule applies to ({} for all)")
	} else if sel, ok := d.selector(join(path, "endpointSelector"), v, SourceAny, nil); ok {
		r.Subject = scope(sel, ns)
	}
	if v, ok := m["description"]; ok {
		r.Description, _ = d.str(join(path, "description"), v)
	}
	for i, l := range d.list(join(path, "labels"), m["labels"]) {
		d.object(index(join(path, "labels"), i), l, "key", "value", "source")
	}
	ingress := d.list(join(path, "ingress"), m["ingress"])
	ingressDeny := d.list(join(path, "ingressDeny"), m["ingressDeny"])
	egress := d.list(join(path, "egress"), m["egress"])
	egressDeny := d.list(join(path, "egressDeny"), m["egressDeny"])
	r.IngressEnforced = len(ingress)+len(ingressDeny) > 0
	r.EgressEnforced = len(egress)+len(egressDeny) > 0
	if dd := d.object(join(path, "enableDefaultDeny"), m["enableDefaultDeny"], "ingress", "egress"); dd != nil {
		if v, ok := dd["ingress"]; ok {
			r.IngressEnforced = d.boolean(join(path, "enableDefaultDeny.ingress"), v)
		}
		if v, ok := dd["egress"]; ok {
			r.EgressEnforced = d.boolean(join(path, "enableDefaultDeny.egress"), v)
		}
	}
	for i, v := range ingress {
		r.Ingress = append(r.Ingress, d.ciliumPeerRule(index(join(path, "ingress"), i), v, ns, true, false))
	}
	for i, v := range ingressDeny {
		r.Ingress = append(r.Ingress, d.ciliumPeerRule(index(join(path, "ingressDeny"), i), v, ns, true, true))
	}
	for i, v := range egress {
		r.Egress = append(r.Egress, d.ciliumPeerRule(index(join(path, "egress"), i), v, ns, false, false))
	}
	for i, v := range egressDeny {
		r.Egress = append(r.Egress, d.ciliumPeerRule(index(join(path, "egressDeny"), i), v, ns, false, true))
	}
	return r
}

// scope limits a selector to the policy's namespace, unless it names the
// namespace or selects reserved identities (which have no namespace).
func scope(s Selector, ns string) Selector {
	if s.hasReserved() {
		return s
	}
	return s.inNamespace(ns)
}

// ciliumPeerRule reads one ingress/ingressDeny/egress/egressDeny rule.
func (d *decoder) ciliumPeerRule(path string, v any, ns string, ingress, deny bool) PeerRule {
	dir := "to"
	if ingress {
		dir = "from"
	}
	fields := []string{dir + "Endpoints", dir + "Requires", dir + "CIDR", dir + "CIDRSet", dir + "Entities", dir + "Groups", dir + "Nodes", "toPorts", "icmps"}
	if !ingress {
		fields = append(fields, "toServices", "toFQDNs")
	}
	if !deny {
		fields = append(fields, "authentication")
	}
	pr := PeerRule{Deny: deny, Field: path}
	m := d.object(path, v, fields...)
	if m == nil {
		return pr
	}
	for _, f := range []string{dir + "Requires", dir + "Groups", dir + "Nodes", "icmps", "toServices", "authentication"} {
		if _, ok := m[f]; ok {
			d.fail(join(path, f), "%s", notSupported(f+" is"))
		}
	}
	for i, s := range d.list(join(path, "toFQDNs"), m["toFQDNs"]) {
		if fm := d.fqdnSelector(index(join(path, "toFQDNs"), i), s); fm != nil {
			pr.Peers = append(pr.Peers, Peer{FQDN: fm})
		}
	}
	for i, s := range d.list(join(path, dir+"Endpoints"), m[dir+"Endpoints"]) {
		if sel, ok := d.selector(index(join(path, dir+"Endpoints"), i), s, SourceAny, nil); ok {
			sel = scope(sel, ns)
			pr.Peers = append(pr.Peers, Peer{Endpoints: &sel})
		}
	}
	for i, c := range d.list(join(path, dir+"CIDR"), m[dir+"CIDR"]) {
		p := index(join(path, dir+"CIDR"), i)
		if r, ok := d.cidrRule(p, c, p, nil, ""); ok {
			pr.Peers = append(pr.Peers, Peer{CIDR: r})
		}
	}
	for i, c := range d.list(join(path, dir+"CIDRSet"), m[dir+"CIDRSet"]) {
		p := index(join(path, dir+"CIDRSet"), i)
		cm := d.object(p, c, "cidr", "except", "cidrGroupRef", "cidrGroupSelector")
		if cm == nil {
			continue
		}
		if _, ok := cm["cidrGroupRef"]; ok {
			d.fail(join(p, "cidrGroupRef"), "CIDR groups are not supported yet; accepted is cidr")
			continue
		}
		if _, ok := cm["cidrGroupSelector"]; ok {
			d.fail(join(p, "cidrGroupSelector"), "CIDR groups are not supported yet; accepted is cidr")
			continue
		}
		if r, ok := d.cidrRule(p, cm["cidr"], join(p, "cidr"), d.list(join(p, "except"), cm["except"]), join(p, "except")); ok {
			pr.Peers = append(pr.Peers, Peer{CIDR: r})
		}
	}
	for i, e := range d.list(join(path, dir+"Entities"), m[dir+"Entities"]) {
		p := index(join(path, dir+"Entities"), i)
		s, ok := d.str(p, e)
		if !ok {
			continue
		}
		if !contains(entities, s) {
			d.fail(p, "entity %q is not supported; accepted are %s", s, strings.Join(entities, ", "))
			continue
		}
		pr.Peers = append(pr.Peers, Peer{Entity: s})
	}
	l3 := false
	for _, f := range []string{dir + "Endpoints", dir + "CIDR", dir + "CIDRSet", dir + "Entities", "toFQDNs"} {
		if _, ok := m[f]; ok {
			l3 = true
		}
	}
	toPorts := d.list(join(path, "toPorts"), m["toPorts"])
	for i, tp := range toPorts {
		ports, l7, dns := d.ciliumPortRule(index(join(path, "toPorts"), i), tp, deny)
		pr.Ports = append(pr.Ports, ports...)
		if l7 != nil {
			pr.HTTP = append(pr.HTTP, *l7)
		}
		if dns != nil {
			if ingress {
				d.fail(dns.Field, "DNS rules apply to egress only (the queries an endpoint sends); accepted on ingress are http rules")
				continue
			}
			pr.DNS = append(pr.DNS, *dns)
		}
	}
	// Only ports: every peer on those ports. Neither: the rule selects nothing.
	pr.AnyPeer = !l3 && len(toPorts) > 0
	return pr
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

// ciliumPortRule reads one toPorts entry: its ports, and the HTTP or DNS
// rules on them (nil without rules.http, rules.dns).
func (d *decoder) ciliumPortRule(path string, v any, deny bool) ([]PortRange, *HTTPPortRule, *DNSPortRule) {
	fields := []string{"ports"}
	if !deny {
		fields = append(fields, "rules", "terminatingTLS", "originatingTLS", "serverNames", "listener")
	}
	m := d.object(path, v, fields...)
	if m == nil {
		return nil, nil, nil
	}
	for _, f := range []string{"terminatingTLS", "originatingTLS", "serverNames", "listener"} {
		if _, ok := m[f]; ok {
			d.fail(join(path, f), "TLS and listener options are not supported yet; accepted is ports")
		}
	}
	var l7 *HTTPPortRule
	var dns *DNSPortRule
	if rules, ok := m["rules"]; ok {
		l7, dns = d.l7Rules(join(path, "rules"), rules)
	}
	var out []PortRange
	ports := d.list(join(path, "ports"), m["ports"])
	if len(ports) == 0 {
		if l7 != nil {
			d.fail(join(path, "ports"), "required by rules.http: L7 rules apply to ports; accepted is a TCP port such as {port: \"80\", protocol: TCP}")
			return nil, nil, nil
		}
		if dns != nil {
			d.fail(join(path, "ports"), "required by rules.dns: DNS rules apply to ports; accepted is a port such as {port: \"53\", protocol: ANY}")
			return nil, nil, nil
		}
		return []PortRange{{}}, nil, nil
	}
	for i, pv := range ports {
		p := index(join(path, "ports"), i)
		pm := d.object(p, pv, "port", "endPort", "protocol")
		if pm == nil {
			continue
		}
		port, ok := d.port(join(p, "port"), pm["port"])
		if !ok {
			continue
		}
		if l7 != nil && !d.carriesHTTP(p, port, pm["protocol"]) {
			continue
		}
		if dns != nil && port == 0 {
			d.fail(join(p, "port"), "L7 DNS rules need a port number; accepted is a port 1-65535 such as 53")
			continue
		}
		proto, ok := d.protocol(join(p, "protocol"), pm["protocol"], 0, "TCP", "UDP", "ANY")
		if !ok {
			continue
		}
		if pr, ok := d.portRange(p, port, pm["endPort"], proto); ok {
			out = append(out, pr)
		}
	}
	if l7 != nil {
		l7.Ports = out
		return nil, l7, nil
	}
	if dns != nil {
		dns.Ports = out
		return nil, nil, dns
	}
	return out, nil, nil
}

// carriesHTTP checks that a port with HTTP rules is a TCP port: UDP, ICMP
// and the other protocols cannot carry HTTP/1.1 or HTTP/2.
func (d *decoder) carriesHTTP(path string, port uint16, proto any) bool {
	if port == 0 {
		d.fail(join(path, "port"), "L7 HTTP rules need a port number; accepted is a TCP port 1-65535")
		return false
	}
	if s, ok := proto.(string); ok && s != "TCP" && s != "ANY" {
		d.fail(join(path, "protocol"), "%q cannot carry HTTP, so it takes no rules.http; accepted with L7 HTTP rules are TCP and ANY", s)
		return false
	}
	return true
}

// l7Rules reads toPorts[].rules: HTTP or DNS rules are returned, the
// other kinds are refused (not enforced yet).
func (d *decoder) l7Rules(path string, v any) (*HTTPPortRule, *DNSPortRule) {
	m := d.object(path, v, "http", "kafka", "dns", "l7proto", "l7")
	if m == nil {
		return nil, nil
	}
	var l7 *HTTPPortRule
	var dns *DNSPortRule
	for _, f := range sortedKeys(m) {
		switch f {
		case "http":
			l7 = &HTTPPortRule{HTTP: d.httpRules(join(path, f), m[f]), Field: join(path, f)}
		case "dns":
			dns = &DNSPortRule{Field: join(path, f)}
			items := d.list(join(path, f), m[f])
			if len(items) == 0 {
				d.fail(join(path, f), "an empty list allows no query; accepted is at least one of {matchName: ...} or {matchPattern: ...} ({matchPattern: \"*\"} allows every name)")
			}
			for i, s := range items {
				if fm := d.fqdnSelector(index(join(path, f), i), s); fm != nil {
					dns.Names = append(dns.Names, fm)
				}
			}
		case "l7proto", "l7":
			d.fail(join(path, f), "generic L7 rules are not supported yet; accepted are http and dns rules (remove rules.%s to enforce the L3/L4 part of the rule)", f)
		default:
			d.fail(join(path, f), "L7 %s rules are not supported yet; accepted are http and dns rules (remove rules.%s to enforce the L3/L4 part of the rule)", strings.ToUpper(f), f)
		}
	}
	if l7 != nil && dns != nil {
		d.fail(path, "one toPorts entry takes http or dns rules, not both; accepted is one kind per entry")
		return nil, nil
	}
	return l7, dns
}

// fqdnSelector reads one toFQDNs or rules.dns entry.
func (d *decoder) fqdnSelector(path string, v any) *fqdn.Matcher {
	m := d.object(path, v, "matchName", "matchPattern")
	if m == nil {
		return nil
	}
	var sel fqdn.Selector
	if n, ok := m["matchName"]; ok {
		if sel.MatchName, ok = d.str(join(path, "matchName"), n); !ok {
			return nil
		}
	}
	if p, ok := m["matchPattern"]; ok {
		if sel.MatchPattern, ok = d.str(join(path, "matchPattern"), p); !ok {
			return nil
		}
	}
	fm, err := fqdn.Compile(sel)
	if err != nil {
		d.fail(path, "%v", err)
		return nil
	}
	return fm
}

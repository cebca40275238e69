package policy

import (
	"github.com/weftnet/weft/state/records"
)

// Namespace label keys of Kubernetes namespace selectors: the namespace's
// name, and the prefix under which agents mirror namespace labels into
// pod labels (Cilium's convention).
const (
	K8sNamespaceNameLabel = "kubernetes.io/metadata.name"
	NamespaceLabelsPrefix = "io.cilium.k8s.namespace.labels."
)

// kubernetesSpec reads a NetworkPolicy's spec.
func (d *decoder) kubernetesSpec(p *Policy, v any) {
	m := d.object("spec", v, "podSelector", "policyTypes", "ingress", "egress")
	if m == nil {
		d.fail("spec", "required: a %s needs spec.podSelector", KindKubernetes)
		return
	}
	var r Rule
	if v, ok := m["podSelector"]; !ok {
		d.fail("spec.podSelector", "required: the pods the policy applies to ({} for all in the namespace)")
	} else if sel, ok := d.selector("spec.podSelector", v, records.SourceK8s, nil); ok {
		r.Subject = sel.inNamespace(p.Namespace)
	}
	ingress := d.list("spec.ingress", m["ingress"])
	egress := d.list("spec.egress", m["egress"])
	if v, ok := m["policyTypes"]; ok {
		for i, t := range d.list("spec.policyTypes", v) {
			s, _ := d.str(index("spec.policyTypes", i), t)
			switch s {
			case "Ingress":
				r.IngressEnforced = true
			case "Egress":
				r.EgressEnforced = true
			default:
				d.fail(index("spec.policyTypes", i), "%q is not a policy type; accepted are Ingress, Egress", s)
			}
		}
	} else {
		r.IngressEnforced, r.EgressEnforced = true, len(egress) > 0
	}
	for i, v := range ingress {
		r.Ingress = append(r.Ingress, d.kubernetesPeerRule(index("spec.ingress", i), v, p.Namespace, "from"))
	}
	for i, v := range egress {
		r.Egress = append(r.Egress, d.kubernetesPeerRule(index("spec.egress", i), v, p.Namespace, "to"))
	}
	p.Rules = []Rule{r}
}

// kubernetesPeerRule reads one ingress (from) or egress (to) rule. No
// peers: every peer; no ports: every port.
func (d *decoder) kubernetesPeerRule(path string, v any, ns, dir string) PeerRule {
	pr := PeerRule{Field: path}
	m := d.object(path, v, dir, "ports")
	peers := d.list(join(path, dir), m[dir])
	pr.AnyPeer = len(peers) == 0
	for i, pv := range peers {
		p := index(join(path, dir), i)
		pm := d.object(p, pv, "podSelector", "namespaceSelector", "ipBlock")
		if pm == nil {
			continue
		}
		if ib, ok := pm["ipBlock"]; ok {
			if len(pm) > 1 {
				d.fail(join(p, "ipBlock"), "ipBlock cannot be combined with podSelector or namespaceSelector in one peer; accepted is a separate peer")
				continue
			}
			bm := d.object(join(p, "ipBlock"), ib, "cidr", "except")
			if bm == nil {
				continue
			}
			if r, ok := d.cidrRule(join(p, "ipBlock"), bm["cidr"], join(p, "ipBlock.cidr"), d.list(join(p, "ipBlock.except"), bm["except"]), join(p, "ipBlock.except")); ok {
				pr.Peers = append(pr.Peers, Peer{CIDR: r})
			}
			continue
		}
		podV, hasPod := pm["podSelector"]
		nsV, hasNS := pm["namespaceSelector"]
		if !hasPod && !hasNS {
			d.fail(p, "a peer needs podSelector, namespaceSelector or ipBlock")
			continue
		}
		pods, ok := d.selector(join(p, "podSelector"), podV, records.SourceK8s, nil)
		if !ok {
			continue
		}
		if !hasNS {
			pods = pods.inNamespace(ns)
			pr.Peers = append(pr.Peers, Peer{Endpoints: &pods})
			continue
		}
		nss, ok := d.selector(join(p, "namespaceSelector"), nsV, records.SourceK8s, namespaceKey)
		if !ok {
			continue
		}
		reqs := append(pods.Requirements, nss.Requirements...)
		if !nss.namesNamespace() {
			// Only endpoints in some namespace: not reserved identities.
			reqs = append(reqs, Requirement{Source: records.SourceK8s, Key: records.LabelNamespace, Op: OpExists})
		}
		sel := newSelector(reqs)
		pr.Peers = append(pr.Peers, Peer{Endpoints: &sel})
	}
	for i, pv := range d.list(join(path, "ports"), m["ports"]) {
		p := index(join(path, "ports"), i)
		pm := d.object(p, pv, "port", "endPort", "protocol")
		if pm == nil {
			continue
		}
		port, ok := d.port(join(p, "port"), pm["port"])
		if !ok {
			continue
		}
		proto, ok := d.protocol(join(p, "protocol"), pm["protocol"], 6, "TCP", "UDP")
		if !ok {
			continue
		}
		if r, ok := d.portRange(p, port, pm["endPort"], proto); ok {
			pr.Ports = append(pr.Ports, r)
		}
	}
	return pr
}

// namespaceKey maps a namespace selector's key to the pod label that
// carries it: the namespace name label, or a mirrored namespace label.
func namespaceKey(src, key string) (string, string) {
	if key == K8sNamespaceNameLabel {
		return records.SourceK8s, records.LabelNamespace
	}
	return records.SourceK8s, NamespaceLabelsPrefix + key
}

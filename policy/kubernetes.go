package policy

import (
	"encoding/json"
	"slices"
	"strconv"
	"strings"

	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	sigsjson "sigs.k8s.io/json"

	"github.com/weftnet/weft/state/records"
)

// Namespace label keys of Kubernetes namespace selectors: the namespace's
// name, and the prefix under which agents mirror namespace labels into
// pod labels (Cilium's convention).
const (
	K8sNamespaceNameLabel = "kubernetes.io/metadata.name"
	NamespaceLabelsPrefix = "io.cilium.k8s.namespace.labels."
)

// kubernetesSpec reads a NetworkPolicy's spec into the Kubernetes type
// (networking.k8s.io/v1, strictly: an unknown field is refused with its
// path), checks its selectors with apimachinery's rules and turns it into
// a rule. NetworkPolicy selectors take k8s-source labels only; namespace
// selectors select namespaces by their mirrored labels.
func (d *decoder) kubernetesSpec(p *Policy, v any) {
	if v == nil {
		d.fail("spec", "required: a %s needs spec.podSelector", KindKubernetes)
		return
	}
	raw, err := json.Marshal(map[string]any{"spec": v})
	if err != nil {
		d.fail("spec", "%v", err)
		return
	}
	var np networkingv1.NetworkPolicy
	strict, err := sigsjson.UnmarshalStrict(raw, &np)
	switch {
	case err != nil:
		d.fail("spec", "%s", strings.TrimPrefix(err.Error(), "json: "))
		return
	case len(strict) > 0:
		for _, e := range strict {
			d.fail("spec", "%s; accepted are the fields of a networking.k8s.io/v1 NetworkPolicy", e)
		}
		return
	}
	if m, _ := v.(map[string]any); m["podSelector"] == nil {
		d.fail("spec.podSelector", "required: the pods the policy applies to ({} for all in the namespace)")
	}
	spec := np.Spec
	var r Rule
	if sel, ok := d.labelSelector("spec.podSelector", &spec.PodSelector, nil); ok {
		r.Subject = sel.inNamespace(p.Namespace)
	}
	if spec.PolicyTypes != nil {
		for i, t := range spec.PolicyTypes {
			switch t {
			case networkingv1.PolicyTypeIngress:
				r.IngressEnforced = true
			case networkingv1.PolicyTypeEgress:
				r.EgressEnforced = true
			default:
				d.fail(index("spec.policyTypes", i), "%q is not a policy type; accepted are Ingress, Egress", t)
			}
		}
	} else {
		r.IngressEnforced, r.EgressEnforced = true, len(spec.Egress) > 0
	}
	for i, in := range spec.Ingress {
		r.Ingress = append(r.Ingress, d.kubernetesPeerRule(index("spec.ingress", i), "from", in.From, in.Ports, p.Namespace))
	}
	for i, out := range spec.Egress {
		r.Egress = append(r.Egress, d.kubernetesPeerRule(index("spec.egress", i), "to", out.To, out.Ports, p.Namespace))
	}
	p.Rules = []Rule{r}
}

// kubernetesPeerRule reads one ingress (from) or egress (to) rule. No
// peers: every peer; no ports: every port.
func (d *decoder) kubernetesPeerRule(path, dir string, peers []networkingv1.NetworkPolicyPeer, ports []networkingv1.NetworkPolicyPort, ns string) PeerRule {
	pr := PeerRule{Field: path, AnyPeer: len(peers) == 0}
	for i, peer := range peers {
		p := index(join(path, dir), i)
		if ib := peer.IPBlock; ib != nil {
			if peer.PodSelector != nil || peer.NamespaceSelector != nil {
				d.fail(join(p, "ipBlock"), "ipBlock cannot be combined with podSelector or namespaceSelector in one peer; accepted is a separate peer")
				continue
			}
			except := make([]any, len(ib.Except))
			for j, e := range ib.Except {
				except[j] = e
			}
			if r, ok := d.cidrRule(join(p, "ipBlock"), ib.CIDR, join(p, "ipBlock.cidr"), except, join(p, "ipBlock.except")); ok {
				pr.Peers = append(pr.Peers, Peer{CIDR: r})
			}
			continue
		}
		if peer.PodSelector == nil && peer.NamespaceSelector == nil {
			d.fail(p, "a peer needs podSelector, namespaceSelector or ipBlock")
			continue
		}
		pods, ok := d.labelSelector(join(p, "podSelector"), peer.PodSelector, nil)
		if !ok {
			continue
		}
		if peer.NamespaceSelector == nil {
			pods = pods.inNamespace(ns)
			pr.Peers = append(pr.Peers, Peer{Endpoints: &pods})
			continue
		}
		nss, ok := d.labelSelector(join(p, "namespaceSelector"), peer.NamespaceSelector, namespaceKey)
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
	for i, pp := range ports {
		p := index(join(path, "ports"), i)
		var portV, endV, protoV any
		if pp.Port != nil {
			portV = pp.Port.String()
		}
		if pp.EndPort != nil {
			endV = strconv.Itoa(int(*pp.EndPort))
		}
		if pp.Protocol != nil {
			protoV = string(*pp.Protocol)
		}
		port, ok := d.port(join(p, "port"), portV)
		if !ok {
			continue
		}
		proto, ok := d.protocol(join(p, "protocol"), protoV, 6, "TCP", "UDP")
		if !ok {
			continue
		}
		if r, ok := d.portRange(p, port, endV, proto); ok {
			pr.Ports = append(pr.Ports, r)
		}
	}
	return pr
}

// labelSelector checks a Kubernetes label selector with apimachinery's
// rules (label key and value syntax, operators and their values) and turns
// it into a selector of k8s-source labels; mapKey rewrites each key (for
// namespace selectors). A nil selector selects everything.
func (d *decoder) labelSelector(path string, ls *metav1.LabelSelector, mapKey func(src, key string) (string, string)) (Selector, bool) {
	if ls == nil {
		return newSelector(nil), true
	}
	if _, err := metav1.LabelSelectorAsSelector(ls); err != nil {
		d.fail(path, "%v", err)
		return Selector{}, false
	}
	var reqs []Requirement
	add := func(key, op string, values []string) {
		src, k := records.SourceK8s, key
		if mapKey != nil {
			src, k = mapKey(src, k)
		}
		values = slices.Clone(values)
		slices.Sort(values)
		reqs = append(reqs, Requirement{Source: src, Key: k, Op: op, Values: slices.Compact(values)})
	}
	for _, k := range sortedKeys(ls.MatchLabels) {
		add(k, OpIn, []string{ls.MatchLabels[k]})
	}
	for _, e := range ls.MatchExpressions {
		add(e.Key, string(e.Operator), e.Values) // LabelSelectorAsSelector accepted the operator
	}
	return newSelector(reqs), true
}

// namespaceKey maps a namespace selector's key to the pod label that
// carries it: the namespace name label, or a mirrored namespace label.
func namespaceKey(src, key string) (string, string) {
	if key == K8sNamespaceNameLabel {
		return records.SourceK8s, records.LabelNamespace
	}
	return records.SourceK8s, NamespaceLabelsPrefix + key
}

package k8s

import (
	"maps"
	"net/netip"

	corev1 "k8s.io/api/core/v1"

	"github.com/weftnet/weft/state/records"
)

// podRecord is what agents need of a pod: labels, node, addresses, phase
// and readiness.
func podRecord(cluster string, p *corev1.Pod) (records.Pod, error) {
	r := records.Pod{
		Cluster: cluster, Namespace: p.Namespace, Name: p.Name, UID: string(p.UID),
		Labels: maps.Clone(p.Labels), Node: p.Spec.NodeName, Phase: string(p.Status.Phase),
		HostNetwork: p.Spec.HostNetwork, Source: SourceKubernetes,
	}
	for _, ip := range p.Status.PodIPs {
		if a, err := netip.ParseAddr(ip.IP); err == nil {
			r.IPs = append(r.IPs, a)
		}
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			r.Ready = c.Status == corev1.ConditionTrue
		}
	}
	if len(r.Labels) == 0 {
		r.Labels = nil
	}
	if err := r.Validate(); err != nil {
		return records.Pod{}, err
	}
	return r, nil
}

// namespaceRecord carries a namespace's labels.
func namespaceRecord(cluster string, ns *corev1.Namespace) (records.Namespace, error) {
	r := records.Namespace{Cluster: cluster, Name: ns.Name, Labels: maps.Clone(ns.Labels), Source: SourceKubernetes}
	if len(r.Labels) == 0 {
		r.Labels = nil
	}
	if err := r.Validate(); err != nil {
		return records.Namespace{}, err
	}
	return r, nil
}

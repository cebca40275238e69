package services

import (
	"maps"
	"net/netip"
	"slices"
	"strconv"

	"github.com/weftnet/weft/state/records"
)

// Record turns a Spec with its allocated ClusterIP and NodePorts into the
// store record. Frontends[0] is the ClusterIP; the external IPs follow,
// then the load-balancer IPs (see FrontendKinds).
func (s Spec) Record(cluster string) records.Service {
	r := records.Service{
		Cluster: cluster, Namespace: s.Namespace, Name: s.Name, Type: s.Type,
		Selector: maps.Clone(s.Selector), SessionAffinity: s.SessionAffinity,
		SessionAffinityTimeout: s.AffinityTimeout, Source: "cli",
	}
	if s.SessionAffinity == records.AffinityNone {
		r.SessionAffinity = ""
	}
	r.Frontends = append([]netip.Addr{s.ClusterIP}, s.ExternalIPs...)
	r.Frontends = append(r.Frontends, s.LoadBalancerIPs...)
	for _, p := range s.Ports {
		r.Ports = append(r.Ports, records.ServicePort{Name: p.Name, Port: p.Port, TargetPort: p.TargetPort, NodePort: p.NodePort, Protocol: p.Protocol})
	}
	for _, b := range s.Backends {
		for _, p := range s.Ports {
			if len(s.Ports) == 1 || b.Port() == p.TargetPort {
				r.Backends = append(r.Backends, records.Backend{IP: b.Addr(), Port: b.Port(), Protocol: p.Protocol, PortName: p.Name, Ready: true})
			}
		}
	}
	if v, ok := s.Annotations[AnnotationGlobal]; ok {
		r.Global = v == "true"
	}
	if v, ok := s.Annotations[AnnotationShared]; ok {
		shared := v == "true"
		r.Shared = &shared
	}
	r.Affinity = s.Annotations[AnnotationAffinity]
	return r
}

// SpecOf is the reverse of Record, for `weft service get` and updates.
func SpecOf(r records.Service) Spec {
	s := Spec{
		Namespace: r.Namespace, Name: r.Name, Type: r.Type, Selector: maps.Clone(r.Selector),
		SessionAffinity: r.SessionAffinity, AffinityTimeout: r.SessionAffinityTimeout,
	}
	k := FrontendKinds(r)
	for i, f := range r.Frontends {
		switch k[i] {
		case KindClusterIP:
			s.ClusterIP = f
		case KindExternalIP:
			s.ExternalIPs = append(s.ExternalIPs, f)
		case KindLoadBalancer:
			s.LoadBalancerIPs = append(s.LoadBalancerIPs, f)
		}
	}
	for _, p := range r.Ports {
		s.Ports = append(s.Ports, Port{Name: p.Name, Port: p.Port, TargetPort: p.TargetPort, NodePort: p.NodePort, Protocol: p.Protocol})
	}
	if len(r.Selector) == 0 {
		for _, b := range r.Backends {
			ap := netip.AddrPortFrom(b.IP, b.Port)
			if !slices.Contains(s.Backends, ap) {
				s.Backends = append(s.Backends, ap)
			}
		}
	}
	if r.Global {
		s.setAnnotation(AnnotationGlobal, "true")
	}
	if r.Shared != nil {
		s.setAnnotation(AnnotationShared, strconv.FormatBool(*r.Shared))
	}
	if r.Affinity != "" {
		s.setAnnotation(AnnotationAffinity, r.Affinity)
	}
	return s
}

func (s *Spec) setAnnotation(k, v string) {
	if s.Annotations == nil {
		s.Annotations = map[string]string{}
	}
	s.Annotations[k] = v
}

// Frontend kinds as shown by `weft service list`.
const (
	KindClusterIP    = "ClusterIP"
	KindClusterSetIP = "ClusterSetIP" // a ServiceImport's address (MCS-API), served as a ClusterIP
	KindNodePort     = "NodePort"
	KindExternalIP   = "ExternalIP"
	KindLoadBalancer = "LoadBalancer"
	KindHostPort     = "HostPort"
)

// FrontendKinds classifies a record's frontends: the first is the
// ClusterIP; of a LoadBalancer service the others are load-balancer IPs,
// of other types external IPs. The record does not tell a LoadBalancer's
// external IPs from its load-balancer IPs; both are programmed alike.
func FrontendKinds(r records.Service) []string {
	out := make([]string, len(r.Frontends))
	for i := range r.Frontends {
		switch {
		case i == 0:
			out[i] = KindClusterIP
		case r.Type == records.ServiceLoadBalancer:
			out[i] = KindLoadBalancer
		default:
			out[i] = KindExternalIP
		}
	}
	return out
}

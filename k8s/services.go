package k8s

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"

	"github.com/weftnet/weft/services"
	"github.com/weftnet/weft/state/records"
)

// errSkip marks a Service that is fine but has nothing to load-balance
// (headless or ExternalName): it is not mirrored and not a problem.
type errSkip struct{ why string }

func (e errSkip) Error() string { return e.why }

// serviceRecord turns a Service and its EndpointSlices into the store
// record. Backends come from the EndpointSlices; a Service with a selector
// and no EndpointSlice at all (a cluster without the EndpointSlice
// controller) keeps its selector, and agents pick the pods themselves as in
// standalone mode.
func serviceRecord(cluster string, svc *corev1.Service, eps []*discoveryv1.EndpointSlice) (records.Service, error) {
	spec, err := serviceSpec(svc)
	if err != nil {
		return records.Service{}, err
	}
	r := spec.Record(cluster)
	r.Source = SourceKubernetes
	if len(eps) > 0 || len(svc.Spec.Selector) == 0 {
		r.Selector = nil
		r.Backends = sliceBackends(eps)
	}
	if err := r.Validate(); err != nil {
		return records.Service{}, err
	}
	return r, nil
}

// serviceSpec converts what services.Spec models and validates it as
// `weft service apply` would (annotation values included).
func serviceSpec(svc *corev1.Service) (services.Spec, error) {
	switch {
	case svc.Spec.Type == corev1.ServiceTypeExternalName:
		return services.Spec{}, errSkip{"an ExternalName service has no backends to load-balance"}
	case svc.Spec.ClusterIP == corev1.ClusterIPNone || svc.Spec.ClusterIP == "":
		return services.Spec{}, errSkip{"a headless service has no virtual address"}
	}
	s := services.Spec{
		Namespace: svc.Namespace, Name: svc.Name, Type: string(svc.Spec.Type), Selector: svc.Spec.Selector,
		SessionAffinity: string(svc.Spec.SessionAffinity),
	}
	var err error
	if s.ClusterIP, err = netip.ParseAddr(svc.Spec.ClusterIP); err != nil {
		return services.Spec{}, fmt.Errorf("spec.clusterIP %q: not an IP address", svc.Spec.ClusterIP)
	}
	if c := svc.Spec.SessionAffinityConfig; c != nil && c.ClientIP != nil && c.ClientIP.TimeoutSeconds != nil {
		s.AffinityTimeout = uint32(*c.ClientIP.TimeoutSeconds)
	}
	for _, p := range svc.Spec.Ports {
		port := services.Port{Name: p.Name, Port: uint16(p.Port), NodePort: uint16(p.NodePort), Protocol: string(p.Protocol)}
		// A named target port is resolved by the EndpointSlices; the
		// record's target port then only matters without them.
		if p.TargetPort.IntVal > 0 {
			port.TargetPort = uint16(p.TargetPort.IntVal)
		}
		s.Ports = append(s.Ports, port)
	}
	for _, ip := range svc.Spec.ExternalIPs {
		a, err := netip.ParseAddr(ip)
		if err != nil {
			return services.Spec{}, fmt.Errorf("spec.externalIPs %q: not an IP address", ip)
		}
		s.ExternalIPs = append(s.ExternalIPs, a)
	}
	if svc.Spec.Type == corev1.ServiceTypeLoadBalancer {
		lbs := []string{svc.Spec.LoadBalancerIP}
		for _, in := range svc.Status.LoadBalancer.Ingress {
			lbs = append(lbs, in.IP)
		}
		for _, ip := range lbs {
			if a, err := netip.ParseAddr(ip); err == nil && !slices.Contains(s.LoadBalancerIPs, a) {
				s.LoadBalancerIPs = append(s.LoadBalancerIPs, a)
			}
		}
	}
	for _, k := range []string{services.AnnotationGlobal, services.AnnotationShared, services.AnnotationAffinity} {
		if v, ok := svc.Annotations[k]; ok {
			if s.Annotations == nil {
				s.Annotations = map[string]string{}
			}
			s.Annotations[k] = v
		}
	}
	if err := s.Validate(); err != nil {
		return services.Spec{}, err
	}
	return s, nil
}

// sliceBackends lists every IPv4 endpoint of the slices on every slice
// port, sorted and without repeats. An unknown ready condition counts as
// ready, an unknown serving condition as the ready one (the API's rules).
func sliceBackends(eps []*discoveryv1.EndpointSlice) []records.Backend {
	var out []records.Backend
	for _, sl := range eps {
		if sl.AddressType != discoveryv1.AddressTypeIPv4 {
			continue
		}
		for _, ep := range sl.Endpoints {
			if len(ep.Addresses) == 0 {
				continue
			}
			ip, err := netip.ParseAddr(ep.Addresses[0]) // consumers use the first address
			if err != nil {
				continue
			}
			ready := ep.Conditions.Ready == nil || *ep.Conditions.Ready
			serving := ready
			if ep.Conditions.Serving != nil {
				serving = *ep.Conditions.Serving
			}
			terminating := ep.Conditions.Terminating != nil && *ep.Conditions.Terminating
			for _, p := range sl.Ports {
				if p.Port == nil {
					continue
				}
				b := records.Backend{IP: ip, Port: uint16(*p.Port), Protocol: records.ProtoTCP, Ready: ready, Serving: serving, Terminating: terminating}
				if p.Protocol != nil {
					b.Protocol = string(*p.Protocol)
				}
				if p.Name != nil {
					b.PortName = *p.Name
				}
				if ep.NodeName != nil {
					b.Node = *ep.NodeName
				}
				if ep.Zone != nil {
					b.Zone = *ep.Zone
				}
				out = append(out, b)
			}
		}
	}
	slices.SortFunc(out, func(a, b records.Backend) int {
		return cmp.Or(a.IP.Compare(b.IP), cmp.Compare(a.Port, b.Port), cmp.Compare(a.Protocol, b.Protocol), cmp.Compare(a.PortName, b.PortName))
	})
	return slices.CompactFunc(out, func(a, b records.Backend) bool {
		return a.IP == b.IP && a.Port == b.Port && a.Protocol == b.Protocol && a.PortName == b.PortName
	})
}

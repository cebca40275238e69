package k8s

import (
	"cmp"
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

// serviceSpec converts a Service as `weft service apply -f` would (the
// annotation values validated alike), leniently about fields Weft does
// not implement; headless and ExternalName services are skipped.
func serviceSpec(svc *corev1.Service) (services.Spec, error) {
	switch {
	case svc.Spec.Type == corev1.ServiceTypeExternalName:
		return services.Spec{}, errSkip{"an ExternalName service has no backends to load-balance"}
	case svc.Spec.ClusterIP == corev1.ClusterIPNone || svc.Spec.ClusterIP == "":
		return services.Spec{}, errSkip{"a headless service has no virtual address"}
	}
	return services.FromService(svc, services.FromServiceOptions{Mirrored: true})
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

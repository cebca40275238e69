package services

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// FromServiceOptions say how strictly FromService reads a Service.
type FromServiceOptions struct {
	// Mirrored: the Service comes from a Kubernetes cluster (the apiserver's
	// Kubernetes source), whose EndpointSlices hold the backends. Fields
	// Weft does not implement are ignored instead of refused, a named
	// target port stands for the port itself (the slices resolve it), and
	// status.loadBalancer adds load-balancer IPs.
	Mirrored bool
}

// FromService turns a Kubernetes v1 Service into a validated Spec. Only the
// service.cilium.io annotations are kept. Without opts.Mirrored it refuses
// what `weft service apply -f` cannot implement, naming the field.
func FromService(svc *corev1.Service, opts FromServiceOptions) (Spec, error) {
	s := Spec{Namespace: svc.Namespace, Name: svc.Name, Type: string(svc.Spec.Type), Selector: svc.Spec.Selector,
		SessionAffinity: string(svc.Spec.SessionAffinity)}
	if !opts.Mirrored {
		if err := unsupported(&svc.Spec); err != nil {
			return Spec{}, err
		}
	}
	if ip := svc.Spec.ClusterIP; ip != "" {
		a, err := netip.ParseAddr(ip)
		if err != nil {
			return Spec{}, invalid("spec.clusterIP %q: an IPv4 address or nothing (allocated) is accepted; headless services (None) are not supported", ip)
		}
		s.ClusterIP = a
	}
	if !opts.Mirrored {
		for _, ip := range svc.Spec.ClusterIPs {
			if ip != svc.Spec.ClusterIP {
				return Spec{}, invalid("spec.clusterIPs %v: only one cluster IP, equal to spec.clusterIP, is accepted", svc.Spec.ClusterIPs)
			}
		}
	}
	var err error
	if s.ExternalIPs, err = parseAddrs("spec.externalIPs", svc.Spec.ExternalIPs); err != nil {
		return Spec{}, err
	}
	lbs := []string{svc.Spec.LoadBalancerIP}
	if opts.Mirrored {
		for _, in := range svc.Status.LoadBalancer.Ingress {
			lbs = append(lbs, in.IP)
		}
	}
	for _, ip := range lbs {
		if ip == "" {
			continue
		}
		a, err := parseAddrs("spec.loadBalancerIP", []string{ip})
		if err != nil {
			return Spec{}, err
		}
		if !slices.Contains(s.LoadBalancerIPs, a[0]) {
			s.LoadBalancerIPs = append(s.LoadBalancerIPs, a[0])
		}
	}
	if c := svc.Spec.SessionAffinityConfig; c != nil && c.ClientIP != nil && c.ClientIP.TimeoutSeconds != nil {
		t := *c.ClientIP.TimeoutSeconds
		if t < 0 {
			return Spec{}, invalid("spec.sessionAffinityConfig.clientIP.timeoutSeconds %d: 1-%d seconds are accepted", t, MaxAffinityTimeout)
		}
		s.AffinityTimeout = uint32(t)
	}
	for i, p := range svc.Spec.Ports {
		port, err := fromServicePort(i, p, opts)
		if err != nil {
			return Spec{}, err
		}
		s.Ports = append(s.Ports, port)
	}
	for k, v := range svc.Annotations {
		if strings.HasPrefix(k, "service.cilium.io/") {
			if opts.Mirrored && k != AnnotationGlobal && k != AnnotationShared && k != AnnotationAffinity {
				continue // other Cilium annotations are not Weft's to judge
			}
			s.setAnnotation(k, v)
		}
	}
	if err := s.Validate(); err != nil {
		return Spec{}, err
	}
	return s, nil
}

// unsupported refuses fields weft recognises but does not implement.
func unsupported(k *corev1.ServiceSpec) error {
	switch {
	case k.Type == corev1.ServiceTypeExternalName || k.ExternalName != "":
		return invalid("spec.type ExternalName: accepted are ClusterIP, NodePort and LoadBalancer")
	case len(k.LoadBalancerSourceRanges) > 0:
		return invalid("spec.loadBalancerSourceRanges: not supported, leave it empty")
	case k.PublishNotReadyAddresses:
		return invalid("spec.publishNotReadyAddresses: not supported, accepted is false")
	case k.IPFamilyPolicy != nil && *k.IPFamilyPolicy != corev1.IPFamilyPolicySingleStack:
		return invalid("spec.ipFamilyPolicy %q: accepted is SingleStack (IPv4)", *k.IPFamilyPolicy)
	case k.ExternalTrafficPolicy != "" && k.ExternalTrafficPolicy != corev1.ServiceExternalTrafficPolicyCluster &&
		k.ExternalTrafficPolicy != corev1.ServiceExternalTrafficPolicyLocal:
		return invalid("spec.externalTrafficPolicy %q: accepted are Cluster and Local", k.ExternalTrafficPolicy)
	case k.InternalTrafficPolicy != nil && *k.InternalTrafficPolicy != corev1.ServiceInternalTrafficPolicyCluster:
		return invalid("spec.internalTrafficPolicy %q: accepted is Cluster", *k.InternalTrafficPolicy)
	}
	for _, f := range k.IPFamilies {
		if f != corev1.IPv4Protocol {
			return invalid("spec.ipFamilies %v: accepted is IPv4", k.IPFamilies)
		}
	}
	return nil
}

func fromServicePort(i int, p corev1.ServicePort, opts FromServiceOptions) (Port, error) {
	field := fmt.Sprintf("spec.ports[%d]", i)
	if p.Port < 1 || p.Port > 65535 {
		return Port{}, invalid("%s.port %d: 1-65535 is accepted", field, p.Port)
	}
	if p.NodePort < 0 || p.NodePort > 65535 {
		return Port{}, invalid("%s.nodePort %d: %d-%d is accepted", field, p.NodePort, MinNodePort, MaxNodePort)
	}
	out := Port{Name: p.Name, Port: uint16(p.Port), NodePort: uint16(p.NodePort), Protocol: string(p.Protocol)}
	if out.Protocol == "" {
		out.Protocol = string(corev1.ProtocolTCP)
	}
	if out.Protocol != string(corev1.ProtocolTCP) && out.Protocol != string(corev1.ProtocolUDP) {
		return Port{}, invalid("%s.protocol %q: accepted are TCP and UDP", field, p.Protocol)
	}
	switch t := p.TargetPort; {
	case t.Type == intstr.Int && t.IntVal == 0:
	case t.Type == intstr.Int && t.IntVal > 0 && t.IntVal <= 65535:
		out.TargetPort = uint16(t.IntVal)
	case t.Type == intstr.String && opts.Mirrored:
		// Resolved per pod by the EndpointSlices.
	default:
		return Port{}, invalid("%s.targetPort %s: a port number 1-65535 is accepted (named target ports are not supported)", field, t.String())
	}
	return out, nil
}

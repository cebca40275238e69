package services

import (
	"errors"
	"net/netip"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// TestFromServiceMirrored: a Service from a live cluster is read leniently
// (fields Weft does not implement ignored, named target ports left to the
// EndpointSlices, status load-balancer IPs added), a manifest strictly.
func TestFromServiceMirrored(t *testing.T) {
	local := corev1.ServiceInternalTrafficPolicyLocal
	svc := func() *corev1.Service {
		return &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web", Annotations: map[string]string{
				AnnotationGlobal: "true", "service.cilium.io/lb-l7": "enabled", "other.io/x": "y"}},
			Spec: corev1.ServiceSpec{
				Type: corev1.ServiceTypeLoadBalancer, ClusterIP: "10.96.0.10", InternalTrafficPolicy: &local,
				Ports:          []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromString("http"), NodePort: 30080, Protocol: corev1.ProtocolTCP}},
				LoadBalancerIP: "192.0.2.1",
			},
			Status: corev1.ServiceStatus{LoadBalancer: corev1.LoadBalancerStatus{Ingress: []corev1.LoadBalancerIngress{{IP: "192.0.2.2"}, {IP: "192.0.2.1"}}}},
		}
	}
	s, err := FromService(svc(), FromServiceOptions{Mirrored: true})
	if err != nil {
		t.Fatalf("mirrored: %v", err)
	}
	wantLB := []netip.Addr{netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2")}
	if s.Ports[0].TargetPort != 80 || len(s.LoadBalancerIPs) != 2 || s.LoadBalancerIPs[0] != wantLB[0] || s.LoadBalancerIPs[1] != wantLB[1] ||
		len(s.Annotations) != 1 || s.Annotations[AnnotationGlobal] != "true" {
		t.Fatalf("mirrored spec %+v", s)
	}
	_, err = FromService(svc(), FromServiceOptions{})
	if err == nil || !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "internalTrafficPolicy") {
		t.Fatalf("strict: %v, want the internalTrafficPolicy refused", err)
	}
	bad := svc()
	bad.Annotations[AnnotationAffinity] = "closest"
	if _, err := FromService(bad, FromServiceOptions{Mirrored: true}); err == nil || !strings.Contains(err.Error(), "accepted are none, local and remote") {
		t.Fatalf("bad affinity: %v", err)
	}
}

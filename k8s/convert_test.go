package k8s

import (
	"errors"
	"net/netip"
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/weftnet/weft/state/records"
)

// TestServiceRecord covers the conversion rules that do not need a real
// API: skipped kinds of Service, the selector fallback, and how
// EndpointSlice conditions and addresses become backends.
func TestServiceRecord(t *testing.T) {
	svc := func(mod func(*corev1.Service)) *corev1.Service {
		s := &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web"},
			Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeClusterIP, ClusterIP: "10.96.0.10", Selector: map[string]string{"app": "web"},
				Ports: []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromInt32(8080), Protocol: corev1.ProtocolTCP}}},
		}
		if mod != nil {
			mod(s)
		}
		return s
	}
	slice := &discoveryv1.EndpointSlice{
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: ptr.To("http"), Port: ptr.To[int32](8080)}},
		Endpoints: []discoveryv1.Endpoint{
			{Addresses: []string{"10.100.1.6", "10.100.9.9"}}, // unknown conditions: ready; first address only
			{Addresses: []string{"10.100.1.5"}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(false), Serving: ptr.To(true), Terminating: ptr.To(true)}},
			{Addresses: []string{"10.100.1.6"}}, // repeated
		},
	}
	v6 := &discoveryv1.EndpointSlice{AddressType: discoveryv1.AddressTypeIPv6, Ports: slice.Ports,
		Endpoints: []discoveryv1.Endpoint{{Addresses: []string{"fd00::1"}}}}

	for _, tc := range []struct {
		name string
		svc  *corev1.Service
		eps  []*discoveryv1.EndpointSlice
		skip bool
		want func(records.Service) bool
	}{
		{name: "headless", svc: svc(func(s *corev1.Service) { s.Spec.ClusterIP = corev1.ClusterIPNone }), skip: true},
		{name: "external name", svc: svc(func(s *corev1.Service) { s.Spec.Type = corev1.ServiceTypeExternalName }), skip: true},
		{name: "selector without slices", svc: svc(nil), want: func(r records.Service) bool {
			return r.Selector["app"] == "web" && len(r.Backends) == 0 && r.Source == SourceKubernetes
		}},
		{name: "slices", svc: svc(nil), eps: []*discoveryv1.EndpointSlice{slice, v6}, want: func(r records.Service) bool {
			want := []records.Backend{
				{IP: netip.MustParseAddr("10.100.1.5"), Port: 8080, Protocol: "TCP", PortName: "http", Serving: true, Terminating: true},
				{IP: netip.MustParseAddr("10.100.1.6"), Port: 8080, Protocol: "TCP", PortName: "http", Ready: true, Serving: true},
			}
			return r.Selector == nil && slices.Equal(r.Backends, want)
		}},
		{name: "no selector, no slices", svc: svc(func(s *corev1.Service) { s.Spec.Selector = nil }), want: func(r records.Service) bool {
			return r.Selector == nil && len(r.Backends) == 0
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := serviceRecord("c1", tc.svc, tc.eps)
			var skip errSkip
			if tc.skip {
				if !errors.As(err, &skip) {
					t.Fatalf("err %v, want skipped", err)
				}
				return
			}
			if err != nil || !tc.want(r) {
				t.Fatalf("record %+v, %v", r, err)
			}
		})
	}
}

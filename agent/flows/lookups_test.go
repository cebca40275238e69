package flows

import (
	"net/netip"
	"testing"

	"github.com/weftnet/weft/api/agentapi"
	"github.com/weftnet/weft/flow"
)

type services []*agentapi.Service

func (s services) List() *agentapi.ListServicesResponse {
	return &agentapi.ListServicesResponse{Services: s}
}

func TestServicesFindTheServiceOfAFrontend(t *testing.T) {
	l := Services(services{
		{Namespace: "dev", Name: "web", Frontends: []*agentapi.Frontend{
			{Address: "10.96.0.10:80/TCP", Type: "ClusterIP"}, {Address: "192.168.1.1:30080/TCP", Type: "NodePort"},
		}, Backends: []*agentapi.Backend{{Address: "10.100.1.7:8080"}}},
		{Namespace: "dev", Name: "dns", Frontends: []*agentapi.Frontend{
			{Address: "10.96.0.53:53/UDP"}, {Address: "10.96.0.53:53/TCP"},
		}, Backends: []*agentapi.Backend{{Address: "10.100.1.9:53/UDP"}, {Address: "10.100.1.9:53/TCP"}}},
	})
	for _, tc := range []struct {
		frontend string
		proto    uint8
		want     string // namespace/name frontend, empty: none
	}{
		{"10.96.0.10:80", flow.ProtoTCP, "dev/web 10.96.0.10:80"},
		{"192.168.1.1:30080", flow.ProtoTCP, "dev/web 192.168.1.1:30080"},
		{"10.96.0.10:80", flow.ProtoUDP, ""},
		{"10.96.0.53:53", flow.ProtoUDP, "dev/dns 10.96.0.53:53"},
		{"10.96.0.53:53", flow.ProtoTCP, "dev/dns 10.96.0.53:53"},
		{"10.100.1.7:8080", flow.ProtoTCP, ""}, // a backend is no frontend
	} {
		svc, ok := l.ServiceOfFrontend(netip.MustParseAddrPort(tc.frontend), tc.proto)
		got := ""
		if ok {
			got = svc.Namespace + "/" + svc.Name + " " + svc.Frontend.String()
		}
		if got != tc.want {
			t.Errorf("service of %s/%d = %q, want %q", tc.frontend, tc.proto, got, tc.want)
		}
	}
}

package endpoints

import (
	"slices"
	"testing"

	"github.com/weftnet/weft/api/agentapi"
)

func TestPortMappings(t *testing.T) {
	got := PortMappingsFrom([]*agentapi.PortMapping{
		{HostPort: 8080, ContainerPort: 80, Protocol: "tcp"},
		{HostPort: 53, ContainerPort: 53, Protocol: "UDP", HostIp: "10.0.0.1"},
		{HostPort: 0, ContainerPort: 80},
		{HostPort: 70000, ContainerPort: 80},
		{HostPort: 9, ContainerPort: 9, Protocol: "sctp"},
	})
	want := []PortMapping{{HostPort: 8080, ContainerPort: 80, Protocol: "TCP"}, {HostPort: 53, ContainerPort: 53, Protocol: "UDP", HostIP: "10.0.0.1"}}
	if !slices.Equal(got, want) {
		t.Fatalf("port mappings %+v, want %+v", got, want)
	}
}

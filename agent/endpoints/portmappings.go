package endpoints

import (
	"strings"

	"github.com/weftnet/weft/api/agentapi"
	"github.com/weftnet/weft/state/records"
)

// PortMapping is a HostPort of an endpoint (STABLE v1 in the endpoint's
// state file).
type PortMapping struct {
	HostPort      uint16 `json:"hostPort"`
	ContainerPort uint16 `json:"containerPort"`
	Protocol      string `json:"protocol"`
	HostIP        string `json:"hostIP,omitempty"`
}

// PortMappingsFrom keeps the valid TCP/UDP mappings of a CNI request (the
// plugin has checked them already).
func PortMappingsFrom(pms []*agentapi.PortMapping) []PortMapping {
	var out []PortMapping
	for _, pm := range pms {
		proto := strings.ToUpper(pm.GetProtocol())
		if proto == "" {
			proto = records.ProtoTCP
		}
		if pm.GetHostPort() == 0 || pm.GetHostPort() > 65535 || pm.GetContainerPort() == 0 || pm.GetContainerPort() > 65535 ||
			(proto != records.ProtoTCP && proto != records.ProtoUDP) {
			continue
		}
		out = append(out, PortMapping{HostPort: uint16(pm.GetHostPort()), ContainerPort: uint16(pm.GetContainerPort()), Protocol: proto, HostIP: pm.GetHostIp()})
	}
	return out
}

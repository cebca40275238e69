package cni

import (
	"fmt"
	"net"

	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"

	"github.com/weftnet/weft/api/agentapi"
)

// podConfig is what the plugin sets up inside the pod, decoded from the
// agent's Endpoint answer.
type podConfig struct {
	addr       *net.IPNet       // pod address with prefix length
	gateway    net.IP           // next hop of the default route
	gatewayMAC net.HardwareAddr // permanent neighbour entry for the gateway
	mtu        int              // 0: keep the kernel's default
	routes     []route          // besides the default route via gateway
}

type route struct {
	dst *net.IPNet
	gw  net.IP // nil: on-link
}

// decodeEndpoint validates the agent's answer. A malformed answer is the
// agent's bug; the message quotes it so that it can be found.
func decodeEndpoint(ep *agentapi.Endpoint) (podConfig, error) {
	var pc podConfig
	ip, addr, err := net.ParseCIDR(ep.GetIpv4())
	if err != nil || ip.To4() == nil {
		return pc, fmt.Errorf("decode endpoint from agent: ipv4 %q is not an IPv4 address with prefix length (e.g. 10.100.1.5/32)", ep.GetIpv4())
	}
	addr.IP = ip.To4()
	pc.addr = addr
	pc.gateway = net.ParseIP(ep.GetGatewayIpv4()).To4()
	if pc.gateway == nil {
		return pc, fmt.Errorf("decode endpoint from agent: gateway_ipv4 %q is not an IPv4 address", ep.GetGatewayIpv4())
	}
	if pc.gateway.Equal(pc.addr.IP) {
		return pc, fmt.Errorf("decode endpoint from agent: gateway_ipv4 %s is the pod's own address", pc.gateway)
	}
	pc.gatewayMAC, err = net.ParseMAC(ep.GetGatewayMac())
	if err != nil || len(pc.gatewayMAC) != 6 {
		return pc, fmt.Errorf("decode endpoint from agent: gateway_mac %q is not an Ethernet MAC address (e.g. 02:00:00:00:00:01)", ep.GetGatewayMac())
	}
	if m := ep.GetMtu(); m != 0 && (m < 68 || m > 65535) {
		return pc, fmt.Errorf("decode endpoint from agent: mtu %d is out of range: accepted are 68-65535, or 0 for the kernel default", m)
	}
	pc.mtu = int(ep.GetMtu())
	for i, r := range ep.GetRoutes() {
		_, dst, err := net.ParseCIDR(r.GetDst())
		if err != nil || dst.IP.To4() == nil {
			return pc, fmt.Errorf("decode endpoint from agent: routes[%d].dst %q is not an IPv4 CIDR", i, r.GetDst())
		}
		var gw net.IP
		if r.GetGw() != "" {
			if gw = net.ParseIP(r.GetGw()).To4(); gw == nil {
				return pc, fmt.Errorf("decode endpoint from agent: routes[%d].gw %q is not an IPv4 address or \"\" (on-link)", i, r.GetGw())
			}
		}
		if isDefault(dst) && (gw == nil || gw.Equal(pc.gateway)) {
			continue // the default route via the gateway is always set up
		}
		pc.routes = append(pc.routes, route{dst: dst, gw: gw})
	}
	return pc, nil
}

// resultRoutes are the routes the CNI result reports: the default route via
// the gateway, then the agent's other routes.
func (pc podConfig) resultRoutes() []*types.Route {
	rs := []*types.Route{{Dst: *defaultDst(), GW: pc.gateway}}
	for _, r := range pc.routes {
		rs = append(rs, &types.Route{Dst: *r.dst, GW: r.gw})
	}
	return rs
}

// result is the CNI 1.x result of ADD: the host veth, the pod interface in
// its sandbox, the address with its gateway, and the routes.
func (pc podConfig) result(cniVersion string, host, pod *current.Interface) *current.Result {
	return &current.Result{
		CNIVersion: cniVersion,
		Interfaces: []*current.Interface{host, pod},
		IPs: []*current.IPConfig{{
			Interface: current.Int(1),
			Address:   *pc.addr,
			Gateway:   pc.gateway,
		}},
		Routes: pc.resultRoutes(),
	}
}

func defaultDst() *net.IPNet {
	return &net.IPNet{IP: net.IPv4zero.To4(), Mask: net.CIDRMask(0, 32)}
}

func isDefault(n *net.IPNet) bool {
	ones, _ := n.Mask.Size()
	return ones == 0
}

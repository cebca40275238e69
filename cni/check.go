package cni

import (
	"context"
	"fmt"
	"net"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/cni/pkg/version"
	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/vishvananda/netlink"

	"github.com/weftnet/weft/api/agentapi"
)

// check is CHECK: the agent still has the endpoint, the host veth is up, and
// the pod interface has the endpoint's address, MTU, routes and gateway
// neighbour (and, given a prevResult, the address ADD reported).
func check(ctx context.Context, args *skel.CmdArgs) error {
	conf, cerr := ParseConfig(args.StdinData)
	if cerr != nil {
		return cerr
	}
	log, closeLog := openLog(conf)
	defer closeLog()
	log = log.With("command", "CHECK", "container", args.ContainerID, "ifname", args.IfName, "netns", args.Netns)
	if err := checkEndpoint(ctx, args, conf); err != nil {
		e := asCNIError(err)
		log.Error("check endpoint", "code", e.Code, "error", e.Msg)
		return e
	}
	log.Debug("checked endpoint")
	return nil
}

func checkEndpoint(ctx context.Context, args *skel.CmdArgs, conf *NetConf) error {
	var prev *current.Result
	if conf.RawPrevResult != nil {
		if err := version.ParsePrevResult(&conf.PluginConf); err != nil {
			return newError(types.ErrDecodingFailure, "parse network config prevResult: %v", err)
		}
		r, err := current.NewResultFromResult(conf.PrevResult)
		if err != nil {
			return newError(types.ErrDecodingFailure, "convert prevResult to CNI %s: %v", conf.CNIVersion, err)
		}
		prev = r
	}
	podNS, err := openPodNS(args.Netns)
	if err != nil {
		return err
	}
	defer podNS.Close()
	client, closeConn, err := agentapi.Dial(ctx, conf.AgentSocket)
	if err != nil {
		return dialError(err)
	}
	defer closeConn()
	ep, err := client.GetEndpoint(ctx, &agentapi.GetEndpointRequest{ContainerId: args.ContainerID})
	if err != nil {
		return agentError(ctx, "get endpoint of container "+args.ContainerID, conf.AgentSocket, err)
	}
	if ep.GetContainerId() != args.ContainerID { // the agent also matches id prefixes
		return newError(types.ErrUnknownContainer, "check container %s: the agent has no endpoint for it (its closest match is container %s)",
			args.ContainerID, ep.GetContainerId())
	}
	if ep.GetIfname() != "" && ep.GetIfname() != args.IfName {
		return newError(types.ErrUnknownContainer, "check container %s: the agent's endpoint is on interface %s, not CNI_IFNAME %s",
			args.ContainerID, ep.GetIfname(), args.IfName)
	}
	// The host veth first: without it the agent cannot tell its MAC, and
	// "no gateway_mac" would hide the real problem.
	hostName := HostIfName(args.ContainerID, args.IfName)
	if err := verifyLink(hostName, "host veth", int(ep.GetMtu())); err != nil {
		return err
	}
	pc, err := decodeEndpoint(ep)
	if err != nil {
		return err
	}
	if prev != nil && !prevHasAddress(prev, pc.addr) {
		return fmt.Errorf("check container %s: the agent's address %s is not in prevResult", args.ContainerID, pc.addr)
	}
	return podNS.Do(func(ns.NetNS) error { return verifyPod(args.IfName, pc) })
}

func prevHasAddress(prev *current.Result, addr *net.IPNet) bool {
	for _, ip := range prev.IPs {
		if ip.Address.String() == addr.String() {
			return true
		}
	}
	return false
}

// verifyLink checks that a veth named name exists in the current namespace,
// is up and has the MTU (when not 0).
func verifyLink(name, what string, mtu int) error {
	link, err := linkByName(name)
	if err != nil {
		return fmt.Errorf("check %s %s: %w", what, name, err)
	}
	if link.Type() != "veth" {
		return fmt.Errorf("check %s %s: it is a %s link, not a veth", what, name, link.Type())
	}
	if link.Attrs().Flags&net.FlagUp == 0 {
		return fmt.Errorf("check %s %s: it is down", what, name)
	}
	if mtu != 0 && link.Attrs().MTU != mtu {
		return fmt.Errorf("check %s %s: MTU is %d, the agent's endpoint has %d", what, name, link.Attrs().MTU, mtu)
	}
	return nil
}

// verifyPod runs inside the pod's namespace.
func verifyPod(ifname string, pc podConfig) error {
	if err := verifyLink(ifname, "pod interface", pc.mtu); err != nil {
		return err
	}
	link, err := linkByName(ifname)
	if err != nil {
		return fmt.Errorf("check pod interface %s: %w", ifname, err)
	}
	addrs, err := addrList(link)
	if err != nil {
		return fmt.Errorf("list addresses of %s: %w", ifname, err)
	}
	found := false
	for _, a := range addrs {
		found = found || a.IPNet.String() == pc.addr.String()
	}
	if !found {
		return fmt.Errorf("check pod interface %s: address %s is missing", ifname, pc.addr)
	}
	routes, err := routeList(link)
	if err != nil {
		return fmt.Errorf("list routes of %s: %w", ifname, err)
	}
	want := append([]route{
		{dst: &net.IPNet{IP: pc.gateway, Mask: net.CIDRMask(32, 32)}},
		{dst: defaultDst(), gw: pc.gateway},
	}, pc.routes...)
	for _, w := range want {
		if !hasRoute(routes, w) {
			return fmt.Errorf("check pod interface %s: route %s via %s is missing", ifname, w.dst, gwString(w.gw))
		}
	}
	neighs, err := neighList(link)
	if err != nil {
		return fmt.Errorf("list neighbours of %s: %w", ifname, err)
	}
	for _, n := range neighs {
		if n.IP.Equal(pc.gateway) {
			if n.State&netlink.NUD_PERMANENT == 0 || n.HardwareAddr.String() != pc.gatewayMAC.String() {
				return fmt.Errorf("check pod interface %s: neighbour %s is %s (state %#x), want permanent %s",
					ifname, pc.gateway, n.HardwareAddr, n.State, pc.gatewayMAC)
			}
			return nil
		}
	}
	return fmt.Errorf("check pod interface %s: permanent neighbour entry for gateway %s is missing", ifname, pc.gateway)
}

func hasRoute(routes []netlink.Route, want route) bool {
	for _, r := range routes {
		dst := r.Dst
		if dst == nil {
			dst = defaultDst()
		}
		if dst.String() == want.dst.String() && r.Gw.Equal(want.gw) {
			return true
		}
	}
	return false
}

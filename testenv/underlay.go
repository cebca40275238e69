package testenv

import (
	"fmt"
	"net"
	"net/netip"
	"os"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// Underlay addressing, used only inside the environment's namespaces: one
// /16 on the bridge; the gateway is .0.1, cluster c's store .0.1<c>, node i
// of cluster c 192.168.<c>.<i>.
const (
	underlayBits = 16
	bridgeName   = "br0"
	underlayDev  = "ul0"
	underlayMTU  = 1500
)

var gatewayIP = netip.AddrFrom4([4]byte{192, 168, 0, 1})

func storeIP(cluster int) netip.Addr {
	return netip.AddrFrom4([4]byte{192, 168, 0, byte(10 + cluster)})
}

func nodeIP(cluster, node int) netip.Addr {
	return netip.AddrFrom4([4]byte{192, 168, byte(cluster), byte(node)})
}

func ipnet(a netip.Addr, bits int) *net.IPNet {
	return &net.IPNet{IP: a.AsSlice(), Mask: net.CIDRMask(bits, 32)}
}

// buildUnderlay creates the underlay namespace with its bridge, the
// gateway address and one store address per cluster.
func (e *Env) buildUnderlay(clusters int) error {
	if err := CreateNetNS(e.Underlay); err != nil {
		return err
	}
	h, err := handleIn(e.Underlay)
	if err != nil {
		return err
	}
	defer h.Close()
	br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: bridgeName, MTU: underlayMTU}}
	if err := h.LinkAdd(br); err != nil {
		return fmt.Errorf("create bridge in %s: %w", e.Underlay, err)
	}
	addrs := []netip.Addr{gatewayIP}
	for c := 1; c <= clusters; c++ {
		addrs = append(addrs, storeIP(c))
	}
	for _, a := range addrs {
		if err := h.AddrAdd(br, &netlink.Addr{IPNet: ipnet(a, underlayBits)}); err != nil {
			return fmt.Errorf("add %v to bridge in %s: %w", a, e.Underlay, err)
		}
	}
	if err := h.LinkSetUp(br); err != nil {
		return fmt.Errorf("set bridge up in %s: %w", e.Underlay, err)
	}
	return writeSysctl(e.Underlay, map[string]string{"net/ipv4/ip_forward": "1"})
}

// buildNode creates the node's namespace, its veth on the bridge with the
// node's address and a default route via the gateway, and its cgroup and
// state directory.
func (e *Env) buildNode(n Node) error {
	if err := os.MkdirAll(n.Dir, 0o755); err != nil {
		return fmt.Errorf("create node directory %s: %w", n.Dir, err)
	}
	if err := os.MkdirAll(n.Cgroup, 0o755); err != nil {
		return fmt.Errorf("create cgroup %s: %w", n.Cgroup, err)
	}
	if err := CreateNetNS(n.NetNS); err != nil {
		return err
	}
	// the bridge port in the underlay is named after the node
	if err := e.plugUnderlay(n.NetNS, n.Name, n.Addr()); err != nil {
		return fmt.Errorf("node %s: %w", n.Name, err)
	}
	return writeSysctl(n.NetNS, map[string]string{
		"net/ipv4/ip_forward":                         "1",
		"net/ipv4/conf/all/rp_filter":                 "0",
		"net/ipv4/conf/default/rp_filter":             "0",
		"net/ipv4/conf/" + underlayDev + "/rp_filter": "0",
	})
}

// plugUnderlay connects namespace nsName to the bridge: a veth whose
// underlay end is the bridge port named port, the other end ul0 in nsName
// with addr and a default route via the gateway.
func (e *Env) plugUnderlay(nsName, port string, addr netip.Addr) error {
	nsh, err := netns.GetFromPath(NetNSPath(nsName))
	if err != nil {
		return fmt.Errorf("open netns %s: %w", nsName, err)
	}
	defer nsh.Close()
	ul, err := handleIn(e.Underlay)
	if err != nil {
		return err
	}
	defer ul.Close()
	br, err := ul.LinkByName(bridgeName)
	if err != nil {
		return fmt.Errorf("find bridge in %s: %w", e.Underlay, err)
	}
	if err := ul.LinkAdd(&netlink.Veth{
		LinkAttrs:     netlink.LinkAttrs{Name: port, MasterIndex: br.Attrs().Index, MTU: underlayMTU},
		PeerName:      underlayDev,
		PeerNamespace: netlink.NsFd(nsh),
	}); err != nil {
		return fmt.Errorf("create veth %s for %s: %w", port, nsName, err)
	}
	pl, err := ul.LinkByName(port)
	if err != nil {
		return fmt.Errorf("find bridge port %s: %w", port, err)
	}
	if err := ul.LinkSetUp(pl); err != nil {
		return fmt.Errorf("set bridge port %s up: %w", port, err)
	}

	h, err := handleIn(nsName)
	if err != nil {
		return err
	}
	defer h.Close()
	dev, err := h.LinkByName(underlayDev)
	if err != nil {
		return fmt.Errorf("find %s in %s: %w", underlayDev, nsName, err)
	}
	if err := h.AddrAdd(dev, &netlink.Addr{IPNet: ipnet(addr, underlayBits)}); err != nil {
		return fmt.Errorf("add %s to %s in %s: %w", addr, underlayDev, nsName, err)
	}
	if err := h.LinkSetUp(dev); err != nil {
		return fmt.Errorf("set %s up in %s: %w", underlayDev, nsName, err)
	}
	if err := h.RouteAdd(&netlink.Route{LinkIndex: dev.Attrs().Index, Dst: ipnet(netip.IPv4Unspecified(), 0), Gw: gatewayIP.AsSlice()}); err != nil {
		return fmt.Errorf("add default route via %v in %s: %w", gatewayIP, nsName, err)
	}
	return nil
}

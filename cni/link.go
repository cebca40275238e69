package cni

import (
	"errors"
	"fmt"
	"net"
	"syscall"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/vishvananda/netlink"
)

// createVeth creates the veth pair in the calling thread's (the node's)
// namespace with its peer created directly inside podNS as ifname. It
// creates nothing when either name is taken, so a failure here leaves
// nothing to clean up.
func createVeth(podNS ns.NetNS, hostName, ifname string) error {
	if _, err := linkByName(hostName); err == nil {
		return fmt.Errorf("create veth %s: a link of that name already exists on the node "+
			"(this container and interface were added before and not deleted: run DEL first)", hostName)
	} else if !isLinkNotFound(err) {
		return fmt.Errorf("look up link %s: %w", hostName, err)
	}
	err := podNS.Do(func(ns.NetNS) error {
		_, err := linkByName(ifname)
		switch {
		case err == nil:
			return fmt.Errorf("create veth peer %s in netns %s: the pod already has an interface of that name: accepted is a CNI_IFNAME not in use in the pod", ifname, podNS.Path())
		case !isLinkNotFound(err):
			return fmt.Errorf("look up %s in netns %s: %w", ifname, podNS.Path(), err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	veth := &netlink.Veth{
		LinkAttrs:     netlink.LinkAttrs{Name: hostName},
		PeerName:      ifname,
		PeerNamespace: netlink.NsFd(int(podNS.Fd())),
	}
	if err := netlink.LinkAdd(veth); err != nil {
		return fmt.Errorf("create veth %s with peer %s in netns %s: %w", hostName, ifname, podNS.Path(), err)
	}
	return nil
}

// setUpHost sets the MTU (when not 0) of the host-side veth and brings it up;
// it returns the link's MAC.
func setUpHost(hostName string, mtu int) (net.HardwareAddr, error) {
	link, err := linkByName(hostName)
	if err != nil {
		return nil, fmt.Errorf("look up host veth %s: %w", hostName, err)
	}
	if mtu != 0 && link.Attrs().MTU != mtu {
		if err := netlink.LinkSetMTU(link, mtu); err != nil {
			return nil, fmt.Errorf("set MTU %d on host veth %s: %w", mtu, hostName, err)
		}
	}
	if err := netlink.LinkSetUp(link); err != nil {
		return nil, fmt.Errorf("set host veth %s up: %w", hostName, err)
	}
	return link.Attrs().HardwareAddr, nil
}

// podMAC returns the MAC of ifname inside podNS.
func podMAC(podNS ns.NetNS, ifname string) (net.HardwareAddr, error) {
	var mac net.HardwareAddr
	err := podNS.Do(func(ns.NetNS) error {
		link, err := linkByName(ifname)
		if err != nil {
			return fmt.Errorf("look up %s in netns %s: %w", ifname, podNS.Path(), err)
		}
		mac = link.Attrs().HardwareAddr
		return nil
	})
	return mac, err
}

// configurePod sets, inside podNS, ifname's MTU and address, brings it up,
// adds the on-link /32 route to the gateway, the gateway's permanent
// neighbour entry, the default route via the gateway and the agent's other
// routes.
func configurePod(podNS ns.NetNS, ifname string, pc podConfig) error {
	return podNS.Do(func(ns.NetNS) error {
		link, err := linkByName(ifname)
		if err != nil {
			return fmt.Errorf("look up %s in netns %s: %w", ifname, podNS.Path(), err)
		}
		if pc.mtu != 0 {
			if err := netlink.LinkSetMTU(link, pc.mtu); err != nil {
				return fmt.Errorf("set MTU %d on %s: %w", pc.mtu, ifname, err)
			}
		}
		if err := netlink.AddrAdd(link, &netlink.Addr{IPNet: pc.addr}); err != nil {
			return fmt.Errorf("add address %s to %s: %w", pc.addr, ifname, err)
		}
		if err := netlink.LinkSetUp(link); err != nil {
			return fmt.Errorf("set %s up: %w", ifname, err)
		}
		idx := link.Attrs().Index
		gw32 := &net.IPNet{IP: pc.gateway, Mask: net.CIDRMask(32, 32)}
		if err := netlink.RouteReplace(&netlink.Route{LinkIndex: idx, Dst: gw32, Scope: netlink.SCOPE_LINK}); err != nil {
			return fmt.Errorf("add on-link route to gateway %s on %s: %w", pc.gateway, ifname, err)
		}
		neigh := &netlink.Neigh{LinkIndex: idx, Family: netlink.FAMILY_V4, State: netlink.NUD_PERMANENT,
			IP: pc.gateway, HardwareAddr: pc.gatewayMAC}
		if err := netlink.NeighSet(neigh); err != nil {
			return fmt.Errorf("add neighbour %s lladdr %s on %s: %w", pc.gateway, pc.gatewayMAC, ifname, err)
		}
		if err := netlink.RouteReplace(&netlink.Route{LinkIndex: idx, Dst: defaultDst(), Gw: pc.gateway}); err != nil {
			return fmt.Errorf("add default route via %s on %s: %w", pc.gateway, ifname, err)
		}
		for _, r := range pc.routes {
			nr := &netlink.Route{LinkIndex: idx, Dst: r.dst, Gw: r.gw}
			if r.gw == nil {
				nr.Scope = netlink.SCOPE_LINK
			}
			if err := netlink.RouteReplace(nr); err != nil {
				return fmt.Errorf("add route %s via %s on %s: %w", r.dst, gwString(r.gw), ifname, err)
			}
		}
		return nil
	})
}

// deleteHostVeth removes the host side of the pair (and with it the peer in
// the pod). A missing link is not an error.
func deleteHostVeth(hostName string) error {
	link, err := linkByName(hostName)
	if isLinkNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("look up host veth %s: %w", hostName, err)
	}
	if err := netlink.LinkDel(link); err != nil && !errors.Is(err, syscall.ENODEV) {
		return fmt.Errorf("delete host veth %s: %w", hostName, err)
	}
	return nil
}

func isLinkNotFound(err error) bool {
	var nf netlink.LinkNotFoundError
	return err != nil && errors.As(err, &nf)
}

func gwString(gw net.IP) string {
	if gw == nil {
		return "on-link"
	}
	return gw.String()
}

// dumpAttempts bounds the retries of a netlink dump the kernel interrupted
// (NLM_F_DUMP_INTR: the table changed while it was read).
const dumpAttempts = 5

// retryDump runs a netlink read until it is not interrupted; the last
// interrupted answer is returned with its error.
func retryDump[T any](f func() (T, error)) (T, error) {
	var v T
	var err error
	for range dumpAttempts {
		if v, err = f(); !errors.Is(err, netlink.ErrDumpInterrupted) {
			break
		}
	}
	return v, err
}

func linkByName(name string) (netlink.Link, error) {
	return retryDump(func() (netlink.Link, error) { return netlink.LinkByName(name) })
}

func addrList(link netlink.Link) ([]netlink.Addr, error) {
	return retryDump(func() ([]netlink.Addr, error) { return netlink.AddrList(link, netlink.FAMILY_V4) })
}

func routeList(link netlink.Link) ([]netlink.Route, error) {
	return retryDump(func() ([]netlink.Route, error) { return netlink.RouteList(link, netlink.FAMILY_V4) })
}

func neighList(link netlink.Link) ([]netlink.Neigh, error) {
	return retryDump(func() ([]netlink.Neigh, error) { return netlink.NeighList(link.Attrs().Index, netlink.FAMILY_V4) })
}

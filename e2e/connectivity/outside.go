package connectivity

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"syscall"

	"github.com/vishvananda/netlink"

	"github.com/weftnet/weft/testenv"
)

// outsideIP is "the world" of a testenv environment: an address the test
// adds to the underlay namespace's bridge (TEST-NET-2, never routed
// anywhere else), with echo servers on it. Pods reach it only through
// masquerading: the underlay has no route back to pod addresses.
var outsideIP = netip.MustParseAddr("198.51.100.1")

// outsideCIDR is its range, for CIDR policies.
const outsideCIDR = "198.51.100.0/24"

// noOutside is why the scenarios with the outside server do not run on
// standalone hosts.
const noOutside = "needs the outside server, which only a testenv environment has (an address in its underlay namespace); on standalone hosts the test sends no traffic beyond the nodes and their test pods"

// setupOutside adds outsideIP to the underlay (if it is not there yet)
// and starts the echo servers on it.
func (fx *fixture) setupOutside(ctx context.Context) error {
	if fx.env == nil {
		fx.skipped = append(fx.skipped, Result{Name: "no-policies/pod-to-world", Skipped: noOutside})
		return nil
	}
	err := testenv.InNetNS(fx.env.Underlay, func() error {
		br, err := netlink.LinkByName("br0")
		if err != nil {
			return err
		}
		err = netlink.AddrAdd(br, &netlink.Addr{IPNet: &net.IPNet{IP: outsideIP.AsSlice(), Mask: net.CIDRMask(32, 32)}})
		if err != nil && !errors.Is(err, syscall.EEXIST) {
			return err
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("add the outside address %s to the underlay namespace %s: %w", outsideIP, fx.env.Underlay, err)
	}
	fx.outside = &endpoint{kind: "outside", name: "outside", ip: outsideIP,
		target: testenv.Target{Kind: "node", Name: "underlay", NetNS: fx.env.Underlay}}
	if err := fx.serve(ctx, *fx.outside, "outside"); err != nil {
		return err
	}
	return fx.setupOutsideDNS(ctx)
}

// probeWorld connects from src to the outside server and expects to be
// seen there as src's node (masqueraded), not as src.
func (fx *fixture) probeWorld(ctx context.Context, src endpoint) error {
	node, err := fx.node(src.node)
	if err != nil {
		return err
	}
	seen, err := fx.greetedAs(ctx, src, *fx.outside)
	if err != nil {
		return err
	}
	if seen.Addr() != node.ip || seen.Port() < 61000 {
		return fmt.Errorf("TCP connection from %s to %s: the server saw the client as %s, expected its node %s and a masquerade port (61000-65535)",
			src, fx.outside, seen, node.ip)
	}
	return nil
}

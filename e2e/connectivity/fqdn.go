package connectivity

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"syscall"

	"github.com/vishvananda/netlink"
	"github.com/weftnet/weft/internal/dnstest"
	"github.com/weftnet/weft/testenv"
)

// The outside DNS server (testenv only): it runs at outsideIP:53 in the
// underlay namespace and answers outsideName with outsideIP and
// otherOutsideName with otherOutsideIP, where the second outside server
// runs; the DNS tests resolve them through the node's DNS proxy.
const (
	outsideName      = "outside.weft.test"
	otherOutsideName = "other.weft.test"
	blockedName      = "blocked.example"
)

var otherOutsideIP = netip.MustParseAddr("198.51.100.2")

// dnsTests are cilium-cli's DNS policy tests: dns-only (the client may
// only resolve, through the DNS proxy) and to-fqdns (and reach the
// address of one name it resolved).
func dnsTests() []policyTest {
	dnsRule := "- toCIDR: [" + outsideIP.String() + "/32]\n  toPorts:\n  - ports: [{port: \"53\", protocol: ANY}]\n    rules:\n      dns: [{matchPattern: \"*.weft.test\"}]"
	return []policyTest{
		{
			name: "dns-only", what: "egress to the outside DNS server only, through the DNS proxy: *.weft.test resolves, other names are refused, and the resolved address is not reached",
			outside: true,
			docs:    cnp("weft-cx-dns-only", "endpointSelector: {"+client2Sel+"}\negress:\n"+dnsRule),
			enforce: map[string]direction{"client2": egress},
			scenarios: func(fx *fixture, cl cluster, add addFunc) {
				x := *cl.other
				add("dns-allowed/udp/"+x.name+"->"+outsideName, fx.resolves(x, outsideName, outsideIP))
				add("dns-refused/udp/"+x.name+"->"+blockedName, fx.refused("dns-only", x, blockedName))
				add("pod-to-world-denied/tcp/"+x.name+"->outside", fx.deniedTCP("dns-only", x, *fx.outside))
			},
		},
		{
			name: "to-fqdns", what: "egress to the addresses of " + outsideName + " as resolved through the DNS proxy: client2 reaches it (masqueraded), not " + otherOutsideName + "'s",
			outside: true,
			docs:    cnp("weft-cx-to-fqdns", "endpointSelector: {"+client2Sel+"}\negress:\n"+dnsRule+"\n- toFQDNs: [{matchName: "+outsideName+"}]"),
			enforce: map[string]direction{"client2": egress},
			scenarios: func(fx *fixture, cl cluster, add addFunc) {
				x := *cl.other
				other := endpoint{kind: "outside", name: "outside-2", ip: otherOutsideIP, target: fx.outside.target}
				add("dns-allowed/udp/"+x.name+"->"+outsideName, fx.resolves(x, outsideName, outsideIP))
				add("pod-to-fqdn/tcp/"+x.name+"->"+outsideName, fx.allowedWorld(x))
				add("dns-allowed/udp/"+x.name+"->"+otherOutsideName, fx.resolves(x, otherOutsideName, otherOutsideIP))
				add("pod-to-fqdn-denied/tcp/"+x.name+"->"+otherOutsideName, fx.deniedTCP("to-fqdns", x, other))
			},
		},
	}
}

// setupOutsideDNS adds the second outside address with its echo servers
// and starts the DNS server on the first one (fx.outside is set).
func (fx *fixture) setupOutsideDNS(ctx context.Context) error {
	err := testenv.InNetNS(fx.env.Underlay, func() error {
		br, err := netlink.LinkByName("br0")
		if err != nil {
			return err
		}
		err = netlink.AddrAdd(br, &netlink.Addr{IPNet: &net.IPNet{IP: otherOutsideIP.AsSlice(), Mask: net.CIDRMask(32, 32)}})
		if err != nil && !errors.Is(err, syscall.EEXIST) {
			return err
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("add the outside address %s to the underlay namespace %s: %w", otherOutsideIP, fx.env.Underlay, err)
	}
	if err := fx.serve(ctx, endpoint{kind: "outside", name: "outside-2", ip: otherOutsideIP, target: fx.outside.target}, "outside-2"); err != nil {
		return err
	}
	var pc net.PacketConn
	err = testenv.InNetNS(fx.env.Underlay, func() (err error) {
		pc, err = net.ListenPacket("udp4", netip.AddrPortFrom(outsideIP, 53).String())
		return err
	})
	if err != nil {
		return fmt.Errorf("start the outside DNS server on %s:53: %w", outsideIP, err)
	}
	names := map[string]netip.Addr{outsideName + ".": outsideIP, otherOutsideName + ".": otherOutsideIP, blockedName + ".": outsideIP}
	fx.servers = append(fx.servers, dnstest.Serve(pc, names, 60))
	return nil
}

// lookup resolves name (A) from inside src at the outside DNS server.
func (fx *fixture) lookup(ctx context.Context, src endpoint, name string) ([]netip.Addr, error) {
	r := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return fx.drv.dial(ctx, src, "udp4", netip.AddrPortFrom(outsideIP, 53))
	}}
	ctx, cancel := context.WithTimeout(ctx, fx.opts.Timeout)
	defer cancel()
	return r.LookupNetIP(ctx, "ip4", name)
}

// resolves is a lookup that must give want.
func (fx *fixture) resolves(src endpoint, name string, want netip.Addr) func(context.Context) error {
	return func(ctx context.Context) error {
		ips, err := fx.lookup(ctx, src, name)
		if err != nil {
			return fmt.Errorf("DNS lookup of %s from %s: %w", name, src, err)
		}
		if len(ips) != 1 || ips[0] != want {
			return fmt.Errorf("DNS lookup of %s from %s: %v, expected %s", name, src, ips, want)
		}
		return nil
	}
}

// refused is a lookup the DNS proxy must refuse.
func (fx *fixture) refused(test string, src endpoint, name string) func(context.Context) error {
	return func(ctx context.Context) error {
		_, err := fx.lookup(ctx, src, name)
		var dnsErr *net.DNSError
		if err == nil {
			return fmt.Errorf("DNS lookup of %s from %s was answered, expected it refused by the DNS rules of test %s:\n%s", name, src, test, strings.TrimSpace(policyTestDocs(test)))
		}
		if !errors.As(err, &dnsErr) || dnsErr.IsTimeout {
			return fmt.Errorf("DNS lookup of %s from %s: %v, expected a refusal (REFUSED), not silence", name, src, err)
		}
		return nil
	}
}

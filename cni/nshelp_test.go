package cni

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"net"
	"slices"
	"strings"
	"testing"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/containernetworking/plugins/pkg/testutils"
	"github.com/vishvananda/netlink"

	"github.com/weftnet/weft/internal/testgate"
)

// newNS creates a throwaway, bind-mounted network namespace (a unique name
// under /var/run/netns) that is removed when the test ends, also on failure.
func newNS(t *testing.T) ns.NetNS {
	t.Helper()
	testgate.Root(t)
	n, err := testutils.NewNS()
	if err != nil {
		t.Fatalf("create netns: %v", err)
	}
	t.Cleanup(func() {
		n.Close() // an open handle keeps the mount busy
		if err := testutils.UnmountNS(n); err != nil {
			t.Errorf("remove netns: %v", err)
		}
	})
	return n
}

// inNS runs f on a thread inside n: the "node" the plugin runs on.
func inNS[T any](t *testing.T, n ns.NetNS, f func() (T, error)) (T, error) {
	t.Helper()
	var v T
	err := n.Do(func(ns.NetNS) error {
		var err error
		v, err = f()
		return err
	})
	return v, err
}

// randomID is a unique container id.
func randomID(t *testing.T) string {
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return "c" + hex.EncodeToString(b)
}

// netConf is a valid configuration for socket with fields changed or added
// (a nil value deletes the field).
func netConf(t *testing.T, socket string, change map[string]any) []byte {
	t.Helper()
	conf := map[string]any{"cniVersion": "1.1.0", "name": "weft", "type": "weft-cni", "agentSocket": socket}
	for k, v := range change {
		if v == nil {
			delete(conf, k)
		} else {
			conf[k] = v
		}
	}
	b, err := json.Marshal(conf)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func cmdArgs(conf []byte, podNS ns.NetNS, containerID, ifname, cniArgs string) *skel.CmdArgs {
	return &skel.CmdArgs{ContainerID: containerID, Netns: podNS.Path(), IfName: ifname,
		Args: cniArgs, Path: "/opt/cni/bin", StdinData: conf}
}

// linkView is what `ip addr; ip route; ip neigh` would show for one link.
type linkView struct {
	Name, Type, MAC string
	Up              bool
	MTU             int
	Addrs           []string // 10.100.7.10/32
	Routes          []string // "0.0.0.0/0 via 10.100.7.1", "10.100.7.1/32 scope link"
	Neighs          []string // "10.100.7.1 02:.. PERMANENT"
}

// links describes every link in n except lo, by name.
func links(t *testing.T, n ns.NetNS) map[string]linkView {
	t.Helper()
	views, err := inNS(t, n, func() (map[string]linkView, error) {
		all, err := netlink.LinkList()
		if err != nil {
			return nil, err
		}
		views := map[string]linkView{}
		for _, l := range all {
			a := l.Attrs()
			if a.Name == "lo" {
				continue
			}
			v := linkView{Name: a.Name, Type: l.Type(), MAC: a.HardwareAddr.String(), Up: a.Flags&net.FlagUp != 0, MTU: a.MTU}
			addrs, err := netlink.AddrList(l, netlink.FAMILY_V4)
			if err != nil {
				return nil, err
			}
			for _, ad := range addrs {
				v.Addrs = append(v.Addrs, ad.IPNet.String())
			}
			routes, err := netlink.RouteList(l, netlink.FAMILY_V4)
			if err != nil {
				return nil, err
			}
			for _, r := range routes {
				dst := "0.0.0.0/0"
				if r.Dst != nil {
					dst = r.Dst.String()
				}
				if r.Gw != nil {
					v.Routes = append(v.Routes, dst+" via "+r.Gw.String())
				} else {
					v.Routes = append(v.Routes, dst+" scope "+r.Scope.String())
				}
			}
			neighs, err := netlink.NeighList(a.Index, netlink.FAMILY_V4)
			if err != nil {
				return nil, err
			}
			for _, ne := range neighs {
				state := fmt.Sprintf("%#x", ne.State)
				if ne.State == netlink.NUD_PERMANENT {
					state = "PERMANENT"
				}
				v.Neighs = append(v.Neighs, ne.IP.String()+" "+ne.HardwareAddr.String()+" "+state)
			}
			slices.Sort(v.Routes)
			views[a.Name] = v
		}
		return views, nil
	})
	if err != nil {
		t.Fatalf("list links in %s: %v", n.Path(), err)
	}
	return views
}

// vethLinks are the names of the veths in n (other links, such as the
// fallback tunnel devices a loaded ipip or sit module adds to every
// namespace, are not the plugin's).
func vethLinks(t *testing.T, n ns.NetNS) []string {
	var names []string
	for name, v := range links(t, n) {
		if v.Type == "veth" {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return names
}

// ipv4Addrs lists every IPv4 address in n except loopback's.
func ipv4Addrs(t *testing.T, n ns.NetNS) []string {
	var addrs []string
	for _, v := range links(t, n) {
		addrs = append(addrs, v.Addrs...)
	}
	return addrs
}

// lxcLinks are the names of the host-side veths in n.
func lxcLinks(t *testing.T, n ns.NetNS) []string {
	var names []string
	for _, name := range slices.Sorted(maps.Keys(links(t, n))) {
		if strings.HasPrefix(name, "lxc") {
			names = append(names, name)
		}
	}
	return names
}

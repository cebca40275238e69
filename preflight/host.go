package preflight

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/weftnet/weft/datapath/bpf"
	"github.com/weftnet/weft/kvstore"
	"github.com/weftnet/weft/kvstore/dial"
)

// tunnelOverhead is what VXLAN adds to a pod's packet; pods get the
// underlay MTU minus this.
const tunnelOverhead = 50

// minPodMTU is the smallest pod MTU that carries IPv4 everywhere (and
// IPv6's minimum, for pods that use it).
const minPodMTU = 1280

func checkBPFFS(_ context.Context, c *Config, h *host) (bool, string, string) {
	if bpf.IsFS(c.BPFFS) {
		return true, "bpffs mounted at " + c.BPFFS, ""
	}
	if err := h.prepErr["bpffs"]; err != nil {
		return false, err.Error(), "mount bpffs at " + mountPoint(c.BPFFS) + " before the agent starts, or give --bpffs a directory on a bpffs"
	}
	return false, c.BPFFS + " is not on a bpffs (pinned maps would not survive an agent restart)",
		"weft-agent mounts it at start; to mount it now: mount -t bpf bpf " + mountPoint(c.BPFFS)
}

// mountPoint is where bpffs goes for dir (see bpf.EnsureFS).
func mountPoint(dir string) string {
	if strings.HasPrefix(dir, bpf.DefaultFS+"/") {
		return bpf.DefaultFS
	}
	return dir
}

func checkCgroup2(_ context.Context, c *Config, h *host) (bool, string, string) {
	fix := "weft-agent mounts one at start; to mount it now: mkdir -p " + bpf.Cgroup2Candidates[0] + " && mount -t cgroup2 none " + bpf.Cgroup2Candidates[0]
	if err := h.prepErr["cgroup2"]; err != nil {
		return false, err.Error(), "mount a cgroup2 hierarchy before the agent starts and give it as --cgroup-path"
	}
	if c.CgroupPath == "" {
		if p := bpf.FindCgroup2(); p != "" {
			return true, "cgroup2 mounted at " + p, ""
		}
		return false, fmt.Sprintf("no cgroup v2 hierarchy at %v", bpf.Cgroup2Candidates), fix
	}
	if bpf.IsCgroup2(c.CgroupPath) {
		return true, "--cgroup-path " + c.CgroupPath + " is cgroup2", ""
	}
	return false, "--cgroup-path " + c.CgroupPath + " is not a cgroup v2 directory",
		"give --cgroup-path a cgroup2 directory, or leave it empty: " + fix
}

func checkUnderlay(_ context.Context, c *Config, h *host) (bool, string, string) {
	lnk, addr, err := findUnderlay(c.NodeIP, c.UnderlayDevice)
	if err != nil {
		return false, err.Error(), "give --node-ip (an address of this host other nodes reach) or --underlay-device"
	}
	h.underlay = lnk.Attrs().Name
	mtu := lnk.Attrs().MTU
	detail := fmt.Sprintf("%s (%s), MTU %d", h.underlay, addr, mtu)
	if lnk.Attrs().OperState == netlink.OperDown {
		return false, detail + ", link is down", "ip link set " + h.underlay + " up"
	}
	podMTU := mtu
	if c.RoutingMode == RoutingTunnel {
		podMTU -= tunnelOverhead
	}
	if podMTU < minPodMTU {
		return false, fmt.Sprintf("%s: pod MTU would be %d, below %d", detail, podMTU, minPodMTU),
			fmt.Sprintf("raise the MTU of %s to at least %d (ip link set %s mtu %d)", h.underlay, minPodMTU+tunnelOverhead, h.underlay, minPodMTU+tunnelOverhead)
	}
	return true, fmt.Sprintf("%s, pod MTU %d", detail, podMTU), ""
}

// findUnderlay is the device holding nodeIP, or device, or the device of
// the default route, with its IPv4 address.
func findUnderlay(nodeIP, device string) (netlink.Link, net.IP, error) {
	if device == "" && nodeIP == "" {
		routes, err := netlink.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Dst: nil}, 0)
		if err != nil {
			return nil, nil, fmt.Errorf("list routes: %w", err)
		}
		for _, r := range routes {
			if r.Dst == nil || r.Dst.String() == "0.0.0.0/0" {
				if l, err := netlink.LinkByIndex(r.LinkIndex); err == nil {
					device = l.Attrs().Name
					break
				}
			}
		}
		if device == "" {
			return nil, nil, errors.New("no default route, so no underlay device to assume")
		}
	}
	links, err := netlink.LinkList()
	if err != nil {
		return nil, nil, fmt.Errorf("list links: %w", err)
	}
	for _, l := range links {
		if device != "" && l.Attrs().Name != device {
			continue
		}
		addrs, _ := netlink.AddrList(l, netlink.FAMILY_V4)
		for _, a := range addrs {
			if !a.IP.IsLoopback() && (nodeIP == "" || a.IP.String() == nodeIP) {
				return l, a.IP, nil
			}
		}
	}
	if device != "" {
		return nil, nil, fmt.Errorf("device %q not found or without an IPv4 address %s", device, nodeIP)
	}
	return nil, nil, fmt.Errorf("no device holds --node-ip %s", nodeIP)
}

// checkRPFilter: strict reverse-path filtering (1) on all or the underlay
// drops tunnelled and redirected packets. weft-agent sets 0 at start when
// it can write the sysctls.
func checkRPFilter(_ context.Context, c *Config, h *host) (bool, string, string) {
	devs := []string{"all"}
	if h.underlay != "" {
		devs = append(devs, h.underlay)
	}
	var strict []string
	writable := true
	for _, d := range devs {
		p := "/proc/sys/net/ipv4/conf/" + d + "/rp_filter"
		b, err := os.ReadFile(p)
		if err != nil {
			return false, fmt.Sprintf("read %s: %v", p, err), "run with /proc/sys mounted"
		}
		if strings.TrimSpace(string(b)) == "1" {
			strict = append(strict, d)
			if f, err := os.OpenFile(p, os.O_WRONLY, 0); err != nil {
				writable = false
			} else {
				f.Close()
			}
		}
	}
	if len(strict) == 0 {
		return true, "not strict on " + strings.Join(devs, ", "), ""
	}
	detail := "strict (1) on " + strings.Join(strict, ", ")
	sysctls := make([]string, len(strict))
	for i, d := range strict {
		sysctls[i] = "net.ipv4.conf." + d + ".rp_filter=0"
	}
	fix := "sysctl -w " + strings.Join(sysctls, " ")
	if !writable {
		return false, detail + ", and weft-agent cannot change it (read-only /proc/sys)", fix + " on the host, or run the agent where /proc/sys is writable"
	}
	if c.Startup {
		return true, detail + "; weft-agent sets 0", ""
	}
	return false, detail + " would drop tunnelled traffic", "weft-agent sets 0 at start; to set it now: " + fix
}

func checkStore(ctx context.Context, c *Config, h *host) (bool, string, string) {
	where := c.KVStore.Backend + " at " + strings.Join(c.KVStore.Endpoints, ",")
	fix := "start the store, or give the agent's --kvstore, --kvstore-endpoints (and TLS files) that reach it"
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	cl, err := dial.Open(ctx, c.KVStore, h.log)
	if err != nil {
		return false, where + ": " + err.Error(), fix
	}
	defer cl.Close(context.WithoutCancel(ctx))
	if _, err := cl.Get(ctx, kvstore.HeartbeatKey(cl.Prefix())); err != nil && !errors.Is(err, kvstore.ErrNotFound) {
		return false, where + ": read: " + err.Error(), fix
	}
	return true, where + " answers", ""
}

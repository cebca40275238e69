package agent

import (
	"cmp"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"sort"
	"strconv"

	"github.com/cilium/ebpf"

	"github.com/weftnet/weft/api/agentapi"
	"github.com/weftnet/weft/datapath"
	"github.com/weftnet/weft/datapath/bpf"
)

// bpfMaps are the maps `weft bpf <name> list` reads.
var bpfMaps = "tunnel, ipcache, endpoints, lb, policy, ct, metrics"

// dumpBPF reads one of the node's maps as a table.
func dumpBPF(dp *datapath.Datapath, name string) (*agentapi.Table, error) {
	o := dp.Objects()
	switch name {
	case "ipcache", "tunnel":
		tunnelOnly := name == "tunnel"
		cols := []string{"PREFIX", "IDENTITY", "TUNNEL ENDPOINT"}
		if tunnelOnly {
			cols = []string{"PREFIX", "TUNNEL ENDPOINT", "IDENTITY"}
		}
		return dump(o.WeftIpcache, cols, func(k bpf.IPCacheKey, v bpf.IPCacheValue) []string {
			tep := ""
			if v.TunnelFamily != 0 {
				tep = bpf.AddrFrom16(v.TunnelFamily, v.TunnelEndpoint).String()
			}
			if tunnelOnly {
				if tep == "" {
					return nil
				}
				return []string{k.Prefix().String(), tep, u(v.Identity)}
			}
			return []string{k.Prefix().String(), u(v.Identity), tep}
		})
	case "endpoints":
		return dump(o.WeftEndpoints, []string{"IP", "ENDPOINT", "IDENTITY", "IFINDEX", "MAC", "POLICY"}, func(k bpf.EndpointKey, v bpf.EndpointInfo) []string {
			return []string{bpf.AddrFrom16(k.Family, k.Addr).String(), u(v.Id), u(v.Identity), u(v.Ifindex), mac(v.Mac), enforcement(v.Flags)}
		})
	case "policy":
		return dump(o.WeftPolicy, []string{"ENDPOINT", "DIRECTION", "IDENTITY", "PORT", "PROTO", "VERDICT"}, func(k bpf.PolicyKey, v bpf.PolicyValue) []string {
			dir := "ingress"
			if k.Direction == bpf.DirEgress {
				dir = "egress"
			}
			verdict := "allow"
			if v.Verdict == bpf.VerdictDeny {
				verdict = "deny"
			}
			return []string{u(k.EndpointId), dir, any0(k.Identity), any0(uint32(bpf.Htons(k.Dport))), proto(k.Proto), verdict}
		})
	case "lb":
		return dumpLB(o)
	case "ct":
		return dump(o.WeftCt, []string{"SOURCE", "DESTINATION", "PROTO", "SRC IDENTITY", "BACKEND", "FLAGS"}, func(k bpf.CTKey, v bpf.CTEntry) []string {
			src := netip.AddrPortFrom(bpf.AddrFrom16(k.Family, k.Saddr), bpf.Htons(k.Sport))
			dst := netip.AddrPortFrom(bpf.AddrFrom16(k.Family, k.Daddr), bpf.Htons(k.Dport))
			return []string{src.String(), dst.String(), proto(k.Proto), u(v.SrcIdentity), any0(v.BackendId), u(v.Flags)}
		})
	case "metrics":
		return dumpMetrics(o)
	}
	return nil, fmt.Errorf("unknown BPF map %q: accepted are %s", name, bpfMaps)
}

// dump iterates m, turning each entry into a row (nil: skip), sorted.
func dump[K, V any](m *ebpf.Map, cols []string, row func(K, V) []string) (*agentapi.Table, error) {
	t := &agentapi.Table{Columns: cols}
	var k K
	var v V
	it := m.Iterate()
	for it.Next(&k, &v) {
		if r := row(k, v); r != nil {
			t.Rows = append(t.Rows, &agentapi.Row{Cells: r})
		}
	}
	if err := it.Err(); err != nil {
		return nil, fmt.Errorf("read map %s: %w", m.String(), err)
	}
	sort.Slice(t.Rows, func(i, j int) bool { return t.Rows[i].Cells[0] < t.Rows[j].Cells[0] })
	return t, nil
}

func dumpLB(o *bpf.Objects) (*agentapi.Table, error) {
	backends := map[uint32]string{}
	var id uint32
	var be bpf.Backend
	it := o.WeftLbBackends.Iterate()
	for it.Next(&id, &be) {
		backends[id] = netip.AddrPortFrom(bpf.AddrFrom16(be.Family, be.Addr), bpf.Htons(be.Port)).String()
	}
	if err := it.Err(); err != nil {
		return nil, fmt.Errorf("read LB backends: %w", err)
	}
	return dump(o.WeftLbServices, []string{"SERVICE ADDRESS", "ID", "BACKENDS"}, func(k bpf.ServiceKey, v bpf.ServiceValue) []string {
		front := netip.AddrPortFrom(bpf.AddrFrom16(k.Family, k.Addr), bpf.Htons(k.Port)).String() + "/" + proto(k.Proto)
		list := ""
		for slot := uint32(1); slot <= uint32(v.Count); slot++ {
			var beID uint32
			if err := o.WeftLbSlots.Lookup(bpf.SlotKey{ServiceId: v.Id, Slot: slot}, &beID); err == nil {
				if list != "" {
					list += ", "
				}
				list += backends[beID]
			}
		}
		return []string{front, u(v.Id), list}
	})
}

func dumpMetrics(o *bpf.Objects) (*agentapi.Table, error) {
	t := &agentapi.Table{Columns: []string{"REASON", "DIRECTION", "PACKETS", "BYTES"}}
	traffic, err := datapath.ReadTraffic(o)
	if err != nil {
		return nil, err
	}
	keys := slices.Collect(maps.Keys(traffic))
	slices.SortFunc(keys, func(a, b datapath.TrafficKey) int {
		return cmp.Or(cmp.Compare(a.Reason, b.Reason), cmp.Compare(a.Direction, b.Direction))
	})
	for _, k := range keys {
		c := traffic[k]
		t.Rows = append(t.Rows, &agentapi.Row{Cells: []string{k.Reason.String(), k.Direction.String(),
			strconv.FormatUint(c.Packets, 10), strconv.FormatUint(c.Bytes, 10)}})
	}
	return t, nil
}

func u[T uint8 | uint16 | uint32](v T) string { return strconv.FormatUint(uint64(v), 10) }

func any0(v uint32) string {
	if v == 0 {
		return "any"
	}
	return u(v)
}

func proto(p uint8) string {
	switch p {
	case 0:
		return "ANY"
	case 1:
		return "ICMP"
	case 6:
		return "TCP"
	case 17:
		return "UDP"
	}
	return u(p)
}

func mac(b [6]uint8) string {
	return fmt.Sprintf("%02x:%02x:%02x:%02x:%02x:%02x", b[0], b[1], b[2], b[3], b[4], b[5])
}

func enforcement(flags uint16) string {
	switch flags & (bpf.EndpointPolicyIngress | bpf.EndpointPolicyEgress) {
	case bpf.EndpointPolicyIngress:
		return "ingress"
	case bpf.EndpointPolicyEgress:
		return "egress"
	case bpf.EndpointPolicyIngress | bpf.EndpointPolicyEgress:
		return "both"
	}
	return "none"
}

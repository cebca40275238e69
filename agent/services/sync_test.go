package services

import (
	"fmt"
	"net/netip"
	"slices"
	"testing"

	"github.com/weftnet/weft/services"
	"github.com/weftnet/weft/state/records"
)

func backend(ip string, ready bool) records.Backend {
	return records.Backend{IP: netip.MustParseAddr(ip), Port: 80, Protocol: "TCP", Ready: ready}
}

func TestMergeRemote(t *testing.T) {
	no := false
	remote := map[string]Remote{
		"c2": {Services: []records.Service{{Namespace: "ns", Name: "web", Global: true, Backends: []records.Backend{backend("10.2.0.1", true)}}}},
		"c3": {Services: []records.Service{{Namespace: "ns", Name: "web", Global: true, Shared: &no, Backends: []records.Backend{backend("10.3.0.1", true)}}}},
		"c4": {Services: []records.Service{{Namespace: "ns", Name: "other", Global: true, Backends: []records.Backend{backend("10.4.0.1", true)}}}},
		"c5": {Services: []records.Service{{Namespace: "ns", Name: "web", Global: true, Selector: map[string]string{"app": "web"},
			Ports: []records.ServicePort{{Port: 80, TargetPort: 80, Protocol: "TCP"}}}},
			Pods: []services.Pod{
				{IP: netip.MustParseAddr("10.5.0.1"), Namespace: "ns", Labels: records.MustParseLabels("k8s:app=web")},
				{IP: netip.MustParseAddr("10.5.0.2"), Namespace: "ns", Labels: records.MustParseLabels("k8s:app=db")},
			}},
	}
	local := tag([]records.Backend{backend("10.1.0.1", true)}, "c1")
	addrs := func(bs []clusterBackend) []string {
		var out []string
		for _, b := range bs {
			out = append(out, b.Cluster+"/"+b.IP.String())
		}
		return out
	}
	for _, tc := range []struct {
		name  string
		svc   records.Service
		local []clusterBackend
		want  []string
	}{
		{"not global", records.Service{Namespace: "ns", Name: "web"}, local, []string{"c1/10.1.0.1"}},
		{"global merges shared", records.Service{Namespace: "ns", Name: "web", Global: true}, local, []string{"c1/10.1.0.1", "c2/10.2.0.1", "c5/10.5.0.1"}},
		{"affinity local", records.Service{Namespace: "ns", Name: "web", Global: true, Affinity: "local"}, local, []string{"c1/10.1.0.1"}},
		{"affinity local, none ready", records.Service{Namespace: "ns", Name: "web", Global: true, Affinity: "local"},
			tag([]records.Backend{backend("10.1.0.1", false)}, "c1"), []string{"c1/10.1.0.1", "c2/10.2.0.1", "c5/10.5.0.1"}},
		{"affinity remote", records.Service{Namespace: "ns", Name: "web", Global: true, Affinity: "remote"}, local, []string{"c2/10.2.0.1", "c5/10.5.0.1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := addrs(mergeRemote(tc.svc, tc.local, remote)); !slices.Equal(got, tc.want) {
				t.Fatalf("backends %v, want %v", got, tc.want)
			}
		})
	}
}

// TestMergeRemoteGlobal: a remote with global addressing shares a pod CIDR
// with this cluster; its backends, explicit (pod addresses) or selected
// (pods known by global addresses), are used by their global addresses
// and keep their pod addresses for `weft service list`.
func TestMergeRemoteGlobal(t *testing.T) {
	pool := []netip.Prefix{netip.MustParsePrefix("10.100.0.0/16")}
	ports := []records.ServicePort{{Port: 80, TargetPort: 80, Protocol: "TCP"}}
	remote := map[string]Remote{
		"c2": {GlobalCIDR: netip.MustParsePrefix("242.2.0.0/16"), PodCIDRs: pool,
			Services: []records.Service{{Namespace: "ns", Name: "web", Global: true, Backends: []records.Backend{backend("10.100.0.5", true)}}}},
		"c3": {GlobalCIDR: netip.MustParsePrefix("242.3.0.0/16"), PodCIDRs: pool,
			Services: []records.Service{{Namespace: "ns", Name: "web", Global: true, Selector: map[string]string{"app": "web"}, Ports: ports}},
			Pods:     []services.Pod{{IP: netip.MustParseAddr("242.3.1.7"), Namespace: "ns", Labels: records.MustParseLabels("k8s:app=web")}}},
		"c4": {Services: []records.Service{{Namespace: "ns", Name: "web", Global: true, Backends: []records.Backend{backend("10.104.0.5", true)}}}},
	}
	local := tag([]records.Backend{backend("10.100.0.5", true)}, "c1")
	var got []string
	for _, b := range mergeRemote(records.Service{Namespace: "ns", Name: "web", Global: true}, local, remote) {
		got = append(got, fmt.Sprintf("%s/%s pod %v", b.Cluster, b.IP, b.PodIP))
	}
	want := []string{"c1/10.100.0.5 pod invalid IP", "c2/242.2.0.5 pod 10.100.0.5", "c3/242.3.1.7 pod 10.100.1.7", "c4/10.104.0.5 pod invalid IP"}
	if !slices.Equal(got, want) {
		t.Fatalf("backends %q, want %q", got, want)
	}
}

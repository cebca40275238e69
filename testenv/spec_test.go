package testenv

import (
	"fmt"
	"strings"
	"testing"
)

func TestSpecValidate(t *testing.T) {
	tests := []struct {
		name   string
		change func(*Spec)
		errHas string // empty: valid
	}{
		{name: "default", change: func(*Spec) {}},
		{name: "two clusters native consul", change: func(s *Spec) { s.Clusters, s.Routing, s.KVStore = 2, RoutingNative, StoreConsul }},
		{name: "name with dash", change: func(s *Spec) { s.Name = "e2e-tunnel-etcd" }},
		{name: "empty name", change: func(s *Spec) { s.Name = "" }, errHas: "environment name"},
		{name: "uppercase name", change: func(s *Spec) { s.Name = "Weft" }, errHas: "lowercase DNS label"},
		{name: "long name", change: func(s *Spec) { s.Name = strings.Repeat("a", 21) }, errHas: "1–20 characters"},
		{name: "slash in name", change: func(s *Spec) { s.Name = "../etc" }, errHas: "environment name"},
		{name: "no nodes", change: func(s *Spec) { s.Nodes = 0 }, errHas: "nodes 0"},
		{name: "ten clusters", change: func(s *Spec) { s.Clusters = 10 }, errHas: "clusters 10"},
		{name: "bad routing", change: func(s *Spec) { s.Routing = "vxlan" }, errHas: `routing mode "vxlan": accepted are "tunnel" and "native"`},
		{name: "bad store", change: func(s *Spec) { s.KVStore = "zk" }, errHas: `kvstore "zk"`},
		{name: "overlapping pod CIDRs", change: func(s *Spec) { s.Clusters, s.OverlappingPodCIDRs = 3, true }},
		{name: "overlapping pod CIDRs native", change: func(s *Spec) { s.Clusters, s.Routing, s.OverlappingPodCIDRs = 3, RoutingNative, true },
			errHas: "overlapping pod CIDRs with native routing: global addresses are translated only in tunnel routing"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := DefaultSpec()
			tc.change(&s)
			err := s.Validate()
			if tc.errHas == "" {
				if err != nil {
					t.Fatalf("Validate: %v, expected valid", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.errHas) {
				t.Fatalf("Validate: %v, expected an error containing %q", err, tc.errHas)
			}
		})
	}
}

func TestLayout(t *testing.T) {
	s := DefaultSpec()
	s.Name, s.Clusters, s.Nodes = "lay", 2, 2
	e := newEnv(s)
	if len(e.Nodes) != 4 || len(e.Clusters) != 2 {
		t.Fatalf("%d nodes in %d clusters, expected 4 in 2", len(e.Nodes), len(e.Clusters))
	}
	n := e.Nodes[3]
	want := Node{Name: "c2-n2", Cluster: "c2", NetNS: "weft-lay-c2-n2", IP: "192.168.2.2",
		Dir: "/var/run/weft/testenv/lay/c2-n2", Socket: "/var/run/weft/testenv/lay/c2-n2/agent.sock"}
	if n.Name != want.Name || n.Cluster != want.Cluster || n.NetNS != want.NetNS || n.IP != want.IP || n.Dir != want.Dir || n.Socket != want.Socket {
		t.Errorf("node 4 = %+v, expected %+v", n, want)
	}
	if !strings.HasSuffix(n.Cgroup, "/weft-testenv-lay/c2-n2") || e.BPFFS != "/sys/fs/bpf/weft-testenv-lay" {
		t.Errorf("cgroup %s, bpffs %s: expected .../weft-testenv-lay/c2-n2 and /sys/fs/bpf/weft-testenv-lay", n.Cgroup, e.BPFFS)
	}
	c := e.Clusters[1]
	if c.ID != 2 || c.PodCIDRPool != "10.101.0.0/16" || c.StoreEndpoints[0] != "http://192.168.0.12:2379" {
		t.Errorf("cluster 2 = %+v", c)
	}
	args, err := e.agentArgs(n)
	if err != nil {
		t.Fatal(err)
	}
	line := strings.Join(args, " ")
	for _, f := range []string{"--node-name c2-n2", "--cluster-id 2", "--routing-mode tunnel", "--node-ip 192.168.2.2",
		"--underlay-device ul0", "--bpffs /sys/fs/bpf/weft-testenv-lay", "--kvstore-endpoints http://192.168.0.12:2379"} {
		if !strings.Contains(line, f) {
			t.Errorf("agent command line %q lacks %q", line, f)
		}
	}
}

// TestLayoutOverlapping: with OverlappingPodCIDRs every cluster has the same
// pod CIDR pool and its own global CIDR, which its apiserver is given.
func TestLayoutOverlapping(t *testing.T) {
	s := DefaultSpec()
	s.Name, s.Clusters, s.Nodes, s.OverlappingPodCIDRs = "ovlay", 3, 1, true
	e := newEnv(s)
	for i, c := range e.Clusters {
		if c.PodCIDRPool != "10.100.0.0/16" || c.GlobalCIDR != fmt.Sprintf("242.%d.0.0/16", i+1) {
			t.Errorf("cluster %s: pool %s, global CIDR %s; want 10.100.0.0/16 and 242.%d.0.0/16", c.Name, c.PodCIDRPool, c.GlobalCIDR, i+1)
		}
	}
	args, err := e.agentArgs(e.Nodes[2])
	if err != nil {
		t.Fatal(err)
	}
	if line := strings.Join(args, " "); !strings.Contains(line, "--pod-cidr-pool 10.100.0.0/16") {
		t.Errorf("agent of c3: %q, want the shared pool", line)
	}
	if plain := newEnv(DefaultSpec()); plain.Clusters[0].GlobalCIDR != "" {
		t.Errorf("without overlapping pod CIDRs: global CIDR %q", plain.Clusters[0].GlobalCIDR)
	}
}

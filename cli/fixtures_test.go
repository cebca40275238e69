package cli

import (
	"github.com/weftnet/weft/api/agentapi"
)

// testAgent is a healthy node c1-n1 of cluster c1 with two endpoints, one of
// them under policy, a service with two frontends, and every BPF map.
func testAgent(node string) *fakeAgent {
	return &fakeAgent{
		status: &agentapi.StatusResponse{
			Node: node, Cluster: "c1", ClusterId: 1, Version: "v0.1.0", RoutingMode: "tunnel",
			NodeIpv4: "192.168.7.2", PodCidrs: []string{"10.100.1.0/24"},
			Store: &agentapi.StoreStatus{
				Backend: "etcd", Endpoints: []string{"http://192.168.7.1:2379"}, Quorum: true,
				Heartbeat: "2026-11-21T09:59:57Z", Synced: true,
			},
			Datapath: &agentapi.DatapathStatus{
				AttachMode: "tcx", BpfRoot: "/sys/fs/bpf/weft/" + node,
				Counters: map[string]uint64{"forwarded": 1520, "policy-denied": 3},
			},
			Endpoints: 2, Identities: 9, Nodes: 2, IpcacheEntries: 5, Services: 1,
			Health: []*agentapi.NodeHealth{
				{Node: "c1-n1", Cluster: "c1", Ip: "192.168.7.2", Reachable: true, LatencyMs: 0.05},
				{Node: "c1-n2", Cluster: "c1", Ip: "192.168.7.3", Reachable: true, LatencyMs: 0.314},
			},
			Uptime: "5m3s",
		},
		nodes: &agentapi.ListNodesResponse{Nodes: []*agentapi.Node{
			{Name: "c1-n1", Cluster: "c1", Ipv4: "192.168.7.2", PodCidrs: []string{"10.100.1.0/24"}, HealthIpv4: "10.100.1.2", BootId: "b1", Local: true},
			{Name: "c1-n2", Cluster: "c1", Ipv4: "192.168.7.3", PodCidrs: []string{"10.100.2.0/24", "10.100.3.0/24"}, HealthIpv4: "10.100.2.2", BootId: "b2"},
		}},
		endpoints: &agentapi.ListEndpointsResponse{Endpoints: []*agentapi.Endpoint{
			{
				Id: 7, ContainerId: "4f2a9c", Netns: "/var/run/netns/weft-e2e-pod-web-1", Ifname: "eth0", HostIfname: "lxc1a2b3c4d",
				Namespace: "default", PodName: "web-1", Ipv4: "10.100.1.5/32", GatewayIpv4: "10.100.1.1", GatewayMac: "0a:00:00:00:00:01",
				Mtu: 1450, Routes: []*agentapi.Route{{Dst: "10.100.1.1/32"}, {Dst: "0.0.0.0/0", Gw: "10.100.1.1"}},
				Identity: 65792, Labels: []string{"k8s:app=web", "k8s:io.kubernetes.pod.namespace=default"}, State: "ready", Node: "c1-n1",
				Policy: &agentapi.EndpointPolicy{IngressEnforced: true, Rules: []*agentapi.PolicyRule{
					{Direction: "ingress", Identity: 65793, Port: 80, Protocol: "TCP", Labels: []string{"k8s:app=client"}},
					{Direction: "ingress", Identity: 2, Port: 8000, EndPort: 8080, Protocol: "TCP", Deny: true, Labels: []string{"reserved:world"}},
				}},
			},
			{
				Id: 12, ContainerId: "9b77e0", Namespace: "default", PodName: "client", Ipv4: "10.100.1.6/32",
				Identity: 65793, Labels: []string{"k8s:app=client"}, State: "ready", Node: "c1-n1",
			},
		}},
		identities: &agentapi.ListIdentitiesResponse{Identities: []*agentapi.Identity{
			{Id: 1, Labels: []string{"reserved:host"}, Reserved: true},
			{Id: 65792, Labels: []string{"k8s:app=web", "k8s:io.kubernetes.pod.namespace=default"}, LocalRefs: 1},
		}},
		ipcache: &agentapi.ListIPCacheResponse{Entries: []*agentapi.IPCacheEntry{
			{Prefix: "10.100.1.5/32", Identity: 65792, Namespace: "default", Pod: "web-1", Cluster: "c1"},
			{Prefix: "10.100.2.7/32", Identity: 65793, HostIp: "192.168.7.3", Namespace: "default", Pod: "client-2", Cluster: "c1"},
			{Prefix: "0.0.0.0/0", Identity: 2},
		}},
		services: &agentapi.ListServicesResponse{Services: []*agentapi.Service{
			{
				Id: 1, Namespace: "default", Name: "web",
				Frontends: []*agentapi.Frontend{{Address: "10.96.0.10:80/TCP", Type: "ClusterIP"}, {Address: "192.168.7.2:30080/TCP", Type: "NodePort"}},
				Backends: []*agentapi.Backend{
					{Address: "10.100.1.5:8080", Node: "c1-n1", Cluster: "c1", Ready: true},
					{Address: "10.100.2.7:8080", Node: "c1-n2", Cluster: "c1", Ready: false},
				},
				Annotations: map[string]string{"service.cilium.io/global": "true"}, SessionAffinity: "None", Source: "kubernetes",
			},
			{Id: 2, Namespace: "default", Name: "empty", Frontends: []*agentapi.Frontend{{Address: "10.96.0.11:53/UDP", Type: "ClusterIP"}}, Source: "cli"},
		}},
		tables: map[string]*agentapi.Table{
			"tunnel":    {Columns: []string{"prefix", "tunnel endpoint"}, Rows: []*agentapi.Row{{Cells: []string{"10.100.2.0/24", "192.168.7.3"}}}},
			"ipcache":   {Columns: []string{"prefix", "identity", "tunnel endpoint"}, Rows: []*agentapi.Row{{Cells: []string{"10.100.2.7/32", "65793", "192.168.7.3"}}}},
			"endpoints": {Columns: []string{"ip", "ifindex", "endpoint"}, Rows: []*agentapi.Row{{Cells: []string{"10.100.1.5", "12", "7"}}}},
			"lb":        {Columns: []string{"service", "slot", "backend"}, Rows: []*agentapi.Row{{Cells: []string{"10.96.0.10:80/TCP", "1", "10.100.1.5:8080"}}}},
			"policy":    {Columns: []string{"endpoint", "identity", "verdict"}, Rows: []*agentapi.Row{{Cells: []string{"7", "65793", "allow"}}}},
			"ct":        {Columns: []string{"src", "dst", "state"}, Rows: []*agentapi.Row{{Cells: []string{"10.100.1.6:4242", "10.100.1.5:80", "established"}}}},
			"metrics":   {Columns: []string{"reason", "packets"}, Rows: []*agentapi.Row{{Cells: []string{"forwarded", "1520"}}, {Cells: []string{"short-row"}}}},
		},
	}
}

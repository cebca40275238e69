package connectivity

import (
	"context"
	"fmt"
)

// Payload sizes.
const (
	smallPayload = 64
	bulkPayload  = 1 << 20 // one TCP transfer of 1 MiB at full-size segments
	icmpHeaders  = 28      // IPv4 + ICMP headers
	udpHeaders   = 28      // IPv4 + UDP headers
)

// scenarios lists every check for every cluster of the environment.
func (fx *fixture) scenarios() []Scenario {
	var out []Scenario
	for _, cl := range fx.clusters {
		out = append(out, fx.clusterScenarios(cl)...)
	}
	return append(append(out, fx.meshScenarios()...), fx.globalScenarios()...)
}

func (fx *fixture) clusterScenarios(cl cluster) []Scenario {
	var out []Scenario
	add := func(name string, run func(context.Context) error) {
		if len(fx.clusters) > 1 {
			name = cl.name + "/" + name
		}
		out = append(out, Scenario{Name: name, Run: run})
	}
	nodes := cl.nodes
	a := cl.pods[0]          // on nodes[0]
	b := cl.pods[len(nodes)] // also on nodes[0]

	// Same node, both directions matter less than all protocols.
	add("no-policies/pod-to-pod/same-node/icmp/"+pair(a, b), func(ctx context.Context) error { return fx.probeICMP(ctx, a, b, 0) })
	add("no-policies/pod-to-pod/same-node/tcp/"+pair(a, b), func(ctx context.Context) error { return fx.probeTCP(ctx, a, b, smallPayload, true) })
	add("no-policies/pod-to-pod/same-node/udp/"+pair(b, a), func(ctx context.Context) error { return fx.probeUDP(ctx, b, a, smallPayload) })

	// Cross node: a ring over the nodes, so every node sends and receives.
	if len(nodes) > 1 {
		for i := range nodes {
			src, dst := cl.pods[i], cl.pods[(i+1)%len(nodes)]
			add("no-policies/pod-to-pod/cross-node/icmp/"+pair(src, dst), func(ctx context.Context) error { return fx.probeICMP(ctx, src, dst, 0) })
			add("no-policies/pod-to-pod/cross-node/tcp/"+pair(src, dst), func(ctx context.Context) error { return fx.probeTCP(ctx, src, dst, smallPayload, true) })
			add("no-policies/pod-to-pod/cross-node/udp/"+pair(src, dst), func(ctx context.Context) error { return fx.probeUDP(ctx, src, dst, smallPayload) })
		}
	}

	// Pods and hosts (node namespaces), local and remote.
	hosts := []endpoint{nodes[0]}
	if len(nodes) > 1 {
		hosts = append(hosts, nodes[1])
	}
	for _, h := range hosts {
		where := "local-node"
		if h.name != a.node {
			where = "remote-node"
		}
		add("no-policies/pod-to-host/"+where+"/icmp/"+pair(a, h), func(ctx context.Context) error { return fx.probeICMP(ctx, a, h, 0) })
		add("no-policies/pod-to-host/"+where+"/tcp/"+pair(a, h), func(ctx context.Context) error { return fx.probeTCP(ctx, a, h, smallPayload, false) })
		add("no-policies/host-to-pod/"+where+"/icmp/"+pair(h, a), func(ctx context.Context) error { return fx.probeICMP(ctx, h, a, 0) })
		add("no-policies/host-to-pod/"+where+"/tcp/"+pair(h, a), func(ctx context.Context) error { return fx.probeTCP(ctx, h, a, smallPayload, false) })
	}

	// The world (an address outside the cluster): masqueraded, seen as the
	// pod's node.
	if fx.outside != nil {
		for _, src := range []endpoint{a, cl.pods[len(nodes)-1]} {
			add("no-policies/pod-to-world/tcp/"+src.name+"->outside", func(ctx context.Context) error { return fx.probeWorld(ctx, src) })
			add("no-policies/pod-to-world/icmp/"+src.name+"->outside", func(ctx context.Context) error { return fx.probeICMP(ctx, src, *fx.outside, 0) })
			if len(nodes) == 1 {
				break
			}
		}
	}

	// Every node's health endpoint, from a pod.
	for _, n := range nodes {
		add("health/pod-to-node-health/"+pair(a, n), func(ctx context.Context) error { return fx.probeHealth(ctx, a, n) })
	}

	// Packets at the pod MTU, across nodes when there are several.
	dst := b
	if len(nodes) > 1 {
		dst = cl.pods[1]
	}
	mtu := fx.podMTU[a.name]
	add(fmt.Sprintf("pod-mtu/icmp-df-%d/%s", mtu, pair(a, dst)), func(ctx context.Context) error {
		return fx.probeICMP(ctx, a, dst, mtu-icmpHeaders)
	})
	add(fmt.Sprintf("pod-mtu/udp-%d/%s", mtu, pair(a, dst)), func(ctx context.Context) error {
		return fx.probeUDP(ctx, a, dst, mtu-udpHeaders)
	})
	add("pod-mtu/tcp-1MiB/"+pair(a, dst), func(ctx context.Context) error {
		return fx.probeTCP(ctx, a, dst, bulkPayload, true)
	})
	fx.serviceScenarios(cl, add)
	fx.ingressScenarios(cl, add)
	return out
}

package connectivity

import (
	"context"
	"fmt"
	"time"

	"github.com/weftnet/weft/api/agentapi"
)

// waitRemote waits, best effort, until the first node of every cluster
// has the first test pod of every other cluster in its BPF ipcache
// (clustermesh). A cluster that never learns them is reported and left to
// the cross-cluster scenarios, which then fail with an explanation.
func (fx *fixture) waitRemote(ctx context.Context) {
	if len(fx.clusters) < 2 {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, fx.opts.PropagationTimeout)
	defer cancel()
	for _, cl := range fx.clusters {
		for _, other := range fx.clusters {
			if other.name == cl.name {
				continue
			}
			want := other.pods[0]
			for {
				ok, err := fx.inBPFIPCache(ctx, cl.nodes[0].name, want)
				if ok {
					break
				}
				if ctx.Err() != nil {
					fmt.Fprintf(fx.opts.Progress, "• node %s has no BPF ipcache entry for %s of cluster %s after %v (last error: %v): is the mesh connected?\n",
						cl.nodes[0].name, want, other.name, fx.opts.PropagationTimeout, err)
					return
				}
				select {
				case <-ctx.Done():
				case <-time.After(200 * time.Millisecond):
				}
			}
		}
	}
}

// inBPFIPCache reports whether node's BPF ipcache holds p's address
// (its global address when p is of another cluster and has one).
func (fx *fixture) inBPFIPCache(ctx context.Context, node string, p endpoint) (bool, error) {
	a, closeFn, err := fx.agent(ctx, node)
	if err != nil {
		return false, err
	}
	defer closeFn()
	rctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	tab, err := a.DumpBPF(rctx, &agentapi.DumpBPFRequest{Map: "ipcache"})
	addr := p.ip
	if fx.clusterOf(node) != fx.clusterOf(p.node) && p.global.IsValid() {
		addr = p.global
	}
	if err != nil {
		return false, err
	}
	for _, r := range tab.Rows {
		if len(r.Cells) > 0 && r.Cells[0] == addr.String()+"/32" {
			return true, nil
		}
	}
	return false, nil
}

// meshScenarios send pod-to-pod traffic from each cluster to the next
// (a ring over the clusters).
func (fx *fixture) meshScenarios() []Scenario {
	if len(fx.clusters) < 2 {
		return nil
	}
	var out []Scenario
	for i, cl := range fx.clusters {
		next := fx.clusters[(i+1)%len(fx.clusters)]
		src, dst := cl.pods[0], next.pods[len(next.nodes)-1]
		pair := src.name + "->" + dst.name
		out = append(out,
			Scenario{Name: "cross-cluster/icmp/" + pair, Run: func(ctx context.Context) error { return fx.probeICMP(ctx, src, dst, 0) }},
			Scenario{Name: "cross-cluster/tcp/" + pair, Run: func(ctx context.Context) error { return fx.probeTCP(ctx, src, dst, smallPayload, true) }},
			Scenario{Name: "cross-cluster/udp/" + pair, Run: func(ctx context.Context) error { return fx.probeUDP(ctx, src, dst, smallPayload) }},
		)
	}
	return out
}

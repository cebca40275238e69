package cli

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/weftnet/weft/api/agentapi"
)

func newStatusCommand(o *options) *cobra.Command {
	var verbose, allNodes bool
	cmd := &cobra.Command{
		Use:         "status",
		Annotations: structuredOutput,
		Short:       "Show the health of a node's agent, its store, datapath and peers",
		Long: `Show a summary of one node's agent: its store (backend, quorum,
heartbeat), cluster and routing mode, pod CIDRs, how many endpoints,
identities, nodes, ipcache entries and services it holds, the datapath's
attach mode, the health of every node it probes (reachability and latency)
and the remote clusters it is connected to.

The exit code is 0 when everything is healthy, 1 when the agent cannot be
reached or reports a problem; the error then says what to check. A remote
cluster's faults (unreachable, not synced, records it may not announce)
are warnings (WARN) on its line and do not change the exit code. The last
garbage collection of the cluster (by weft-apiserver or the agent holding
the collector lock) is shown with what it last freed.`,
		Example: `  $ weft status
  Node:         c1-n1 (cluster c1, id 1)
  Agent:        v0.1.0, up 5m3s
  Store:        OK  etcd, quorum, synced, heartbeat 3s ago
  Routing:      tunnel (VXLAN, UDP 8472)
  Node IPv4:    192.168.7.2
  Pod CIDRs:    10.100.1.0/24 (2/253 allocated)
  Datapath:     OK  tcx
  Endpoints:    2
  Identities:   9
  Nodes:        2
  IPCache:      5 entries
  Services:     1
  Node health:  2/2 reachable
                c1-n1  192.168.7.2  reachable  0.05 ms
                c1-n2  192.168.7.3  reachable  0.31 ms

  # The second node of testenv environment "e2e", with counters and details
  weft --name e2e --node c1-n2 status --verbose`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if allNodes {
				return allNodesStatus(cmd, o)
			}
			var st *agentapi.StatusResponse
			err := o.withAgent(cmd.Context(), func(ctx context.Context, t target, a agentapi.AgentClient) error {
				var err error
				st, err = a.Status(ctx, &agentapi.StatusRequest{Verbose: verbose})
				if err != nil {
					return t.rpcError("ask the agent's status", err)
				}
				return nil
			})
			if err != nil {
				return err
			}
			if err := o.printer(cmd).print(st, statusView{st: st, verbose: verbose, now: o.now()}.write); err != nil {
				return err
			}
			if problems := statusProblems(st); len(problems) > 0 {
				return fmt.Errorf("weft-agent on node %s is unhealthy: %s", orDash(st.GetNode()), strings.Join(problems, "; "))
			}
			return nil
		},
	}
	cmd.Flags().BoolVarP(&verbose, "verbose", "v", false, "show store endpoints, BPF root, datapath counters and remote cluster details")
	cmd.Flags().BoolVar(&allNodes, "all-nodes", false, "a summary of every agent of the testenv environment (--name): agents ready, versions, and one line per node")
	return cmd
}

// statusProblems lists what is wrong on the node, each with what to check.
func statusProblems(st *agentapi.StatusResponse) []string {
	var p []string
	store := st.GetStore()
	endpoints := strings.Join(store.GetEndpoints(), ", ")
	switch {
	case store.GetError() != "":
		p = append(p, fmt.Sprintf("store %s: %s (check that the store at %s is up and reachable from the node)",
			orDash(store.GetBackend()), store.GetError(), orDash(endpoints)))
	case store.GetBackend() != "" && !store.GetQuorum():
		p = append(p, fmt.Sprintf("store %s: no quorum (check that a majority of the members %s are up)",
			store.GetBackend(), orDash(endpoints)))
	}
	if dp := st.GetDatapath(); dp.GetError() != "" {
		p = append(p, fmt.Sprintf("datapath: %s (check the agent's log and the BPF filesystem at %s)", dp.GetError(), orDash(dp.GetBpfRoot())))
	}
	var down []string
	local := 0
	for _, h := range st.GetHealth() {
		// Nodes of remote clusters are the remote's: their state is shown,
		// it is not this node's health.
		if h.GetCluster() != "" && st.GetCluster() != "" && h.GetCluster() != st.GetCluster() {
			continue
		}
		local++
		if !h.GetReachable() {
			d := fmt.Sprintf("%s (%s)", h.GetNode(), orDash(h.GetIp()))
			if h.GetError() != "" {
				d += ": " + h.GetError()
			}
			down = append(down, d)
		}
	}
	if len(down) > 0 {
		p = append(p, fmt.Sprintf("%d of %d nodes unreachable: %s (check that their agents run and answer GET /healthz on port 4240 over the underlay)",
			len(down), local, strings.Join(down, ", ")))
	}
	// A remote cluster's faults (unreachable, not synced, records it may
	// not announce, its nodes unreachable) are warnings on its lines of the
	// summary: they are the remote's, not this node's (`weft clustermesh
	// status` fails on them).
	return p
}

package cli

import (
	"context"
	"strings"

	"github.com/spf13/cobra"

	"github.com/weftnet/weft/api/agentapi"
)

func newNodeCommand(o *options) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "node",
		Short: "Show the nodes an agent knows",
		Example: `  weft node list
  weft --name e2e node list -o yaml`,
		Args: cobra.NoArgs,
	}
	cmd.AddCommand(newNodeListCommand(o))
	return cmd
}

func newNodeListCommand(o *options) *cobra.Command {
	return &cobra.Command{
		Use:         "list",
		Annotations: structuredOutput,
		Short:       "List the nodes of the cluster and of connected clusters",
		Long: `List the nodes the agent has learnt from the store: its own cluster's
and those of connected clusters. LOCAL marks the node the agent runs on.
Whether each node answers its health checks is on weft status.`,
		Example: `  $ weft node list
  NAME    CLUSTER   IPV4          POD CIDRS       LOCAL
  c1-n1   c1        192.168.1.1   10.100.0.0/24   *
  c1-n2   c1        192.168.1.2   10.100.1.0/24`,
		Aliases: []string{"ls"},
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return o.withAgent(cmd.Context(), func(ctx context.Context, t target, a agentapi.AgentClient) error {
				resp, err := a.ListNodes(ctx, &agentapi.ListNodesRequest{})
				if err != nil {
					return t.rpcError("list nodes", err)
				}
				return o.printer(cmd).print(resp, nodeTable(resp).write)
			})
		},
	}
}

func nodeTable(resp *agentapi.ListNodesResponse) *table {
	// No health address column: agents answer health checks on their
	// node address (--health-port), so the record's health_ipv4 is empty.
	t := newTable("Name", "Cluster", "IPv4", "Pod CIDRs", "Local")
	for _, n := range resp.GetNodes() {
		local := ""
		if n.GetLocal() {
			local = "*"
		}
		t.add(n.GetName(), n.GetCluster(), n.GetIpv4(), strings.Join(n.GetPodCidrs(), "\n"), local)
	}
	return t
}

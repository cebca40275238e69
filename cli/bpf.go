package cli

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/weftnet/weft/api/agentapi"
)

// bpfMaps are the maps DumpBPF reads, with what each holds.
func bpfMaps() [][2]string {
	return [][2]string{
		{"tunnel", "List the tunnel map: remote pod CIDRs and the node each lives on"},
		{"ipcache", "List the datapath's ipcache: prefix to identity and tunnel endpoint"},
		{"endpoints", "List the local endpoints map: pod IP to interface and endpoint"},
		{"lb", "List the load-balancer maps: services, backends and reverse NAT"},
		{"policy", "List the policy map: endpoint, identity, port, direction to verdict"},
		{"ct", "List the connection-tracking table"},
		{"metrics", "List the datapath's packet counters by reason"},
	}
}

func newBPFCommand(o *options) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "bpf",
		Short: "Read the node's BPF maps",
		Long: `Read the node's BPF maps as the datapath sees them. The agent reads the
pinned maps and answers with a table; columns depend on the map.`,
		Example: `  weft bpf tunnel list
  weft bpf ct list -o json`,
		Args: cobra.NoArgs,
	}
	for _, m := range bpfMaps() {
		sub := &cobra.Command{
			Use:     m[0],
			Short:   "Read the " + m[0] + " BPF map",
			Example: fmt.Sprintf("  weft bpf %s list", m[0]),
			Args:    cobra.NoArgs,
		}
		sub.AddCommand(newBPFListCommand(o, m[0], m[1]))
		cmd.AddCommand(sub)
	}
	return cmd
}

func newBPFListCommand(o *options, name, short string) *cobra.Command {
	return &cobra.Command{
		Use:         "list",
		Annotations: structuredOutput,
		Aliases:     []string{"ls"},
		Short:       short,
		Long: short + `.

The agent reads the pinned map and answers with a table; the columns are
the agent's and depend on the map. -o json prints {"columns": [...],
"rows": [{"cells": [...]}]}.`,
		Example: fmt.Sprintf("  weft bpf %s list\n  weft --name e2e --node c1-n2 bpf %s list -o yaml", name, name),
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return o.withAgent(cmd.Context(), func(ctx context.Context, t target, a agentapi.AgentClient) error {
				tbl, err := a.DumpBPF(ctx, &agentapi.DumpBPFRequest{Map: name})
				if err != nil {
					return t.rpcError("dump BPF map "+name, err)
				}
				return o.printer(cmd).print(tbl, dumpTable(tbl).write)
			})
		},
	}
}

func dumpTable(tbl *agentapi.Table) *table {
	t := newTable(tbl.GetColumns()...)
	for _, r := range tbl.GetRows() {
		cells := r.GetCells()
		// A short or long row still lines up under the header.
		row := make([]string, max(len(cells), len(t.header)))
		copy(row, cells)
		t.add(row...)
	}
	return t
}

package cli

import (
	"context"
	"slices"

	"github.com/spf13/cobra"

	"github.com/weftnet/weft/api/agentapi"
)

func newIPCacheCommand(o *options) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "ipcache",
		Short: "Show the IP-to-identity cache",
		Example: `  weft ipcache list
  weft ipcache list -o json`,
		Args: cobra.NoArgs,
	}
	cmd.AddCommand(&cobra.Command{
		Use:         "list",
		Annotations: structuredOutput,
		Aliases:     []string{"ls"},
		Short:       "List IP prefixes with their identity and tunnel endpoint",
		Long: `List the agent's ipcache: every known pod IP (of this cluster and of
connected clusters) and prefix, with its security identity and the node
(tunnel endpoint) it lives on. This is the store's view; "weft bpf ipcache
list" shows what the datapath holds.`,
		Example: `  $ weft ipcache list
  PREFIX          IDENTITY   TUNNEL ENDPOINT   CLUSTER   POD
  10.100.1.5/32   65792      192.168.7.2       c1        default/web-1
  10.100.2.7/32   65793      192.168.7.3       c1        default/client`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return o.withAgent(cmd.Context(), func(ctx context.Context, t target, a agentapi.AgentClient) error {
				resp, err := a.ListIPCache(ctx, &agentapi.ListIPCacheRequest{})
				if err != nil {
					return t.rpcError("list ipcache", err)
				}
				return o.printer(cmd).print(resp, ipcacheTable(resp).write)
			})
		},
	})
	return cmd
}

// ipcacheTable lists the entries; a GLOBAL ADDRESS column appears when a
// cluster has global addressing (docs/clustermesh.md).
func ipcacheTable(resp *agentapi.ListIPCacheResponse) *table {
	global := slices.ContainsFunc(resp.GetEntries(), func(e *agentapi.IPCacheEntry) bool { return e.GetGlobalIp() != "" })
	header := []string{"Prefix", "Identity", "Tunnel Endpoint", "Cluster", "Pod"}
	if global {
		header = append(header, "Global Address")
	}
	t := newTable(header...)
	for _, e := range resp.GetEntries() {
		row := []string{e.GetPrefix(), itoa(e.GetIdentity()), orDash(e.GetHostIp()), orDash(e.GetCluster()),
			orDash(podName(e.GetNamespace(), e.GetPod()))}
		if global {
			row = append(row, orDash(e.GetGlobalIp()))
		}
		t.add(row...)
	}
	return t
}

package cli

import (
	"context"
	"time"

	"github.com/spf13/cobra"

	"github.com/weftnet/weft/api/agentapi"
)

func newFQDNCommand(o *options) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "fqdn",
		Short: "Show what the node's DNS proxy learnt for toFQDNs policies",
		Example: `  weft fqdn cache list
  weft fqdn cache list api.example.com -o json`,
		Args: cobra.NoArgs,
	}
	cache := &cobra.Command{
		Use:     "cache",
		Short:   "The node's FQDN cache",
		Example: "  weft fqdn cache list",
		Args:    cobra.NoArgs,
	}
	list := &cobra.Command{
		Use:         "list [NAME]",
		Annotations: structuredOutput,
		Aliases:     []string{"ls"},
		Short:       "List the addresses learnt from allowed DNS answers",
		Long: `List the node's FQDN cache: every name its DNS proxy resolved for an
endpoint whose policy has rules.dns, with the addresses of the answer and
when they expire (the answer's TTL, at least the agent's
--tofqdns-min-ttl). toFQDNs rules select these addresses until then; the
cache survives agent restarts. With NAME, only that DNS name (any case,
with or without the trailing dot). See docs/fqdn.md.`,
		Example: `  $ weft fqdn cache list
  NAME              IP            EXPIRES
  allowed.example   192.168.0.1   2026-12-04T17:02:11Z (59m58s)`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var name string
			if len(args) == 1 {
				name = args[0]
			}
			return o.withPolicy(cmd.Context(), func(ctx context.Context, t target, p agentapi.PolicyClient) error {
				resp, err := p.ListFQDNCache(ctx, &agentapi.ListFQDNCacheRequest{Name: name})
				if err != nil {
					return t.rpcError("list the FQDN cache", err)
				}
				return o.printer(cmd).print(resp, fqdnTable(resp, time.Now()).write)
			})
		},
	}
	cache.AddCommand(list)
	cmd.AddCommand(cache)
	return cmd
}

func fqdnTable(resp *agentapi.ListFQDNCacheResponse, now time.Time) *table {
	t := newTable("Name", "IP", "Expires")
	for _, e := range resp.GetEntries() {
		exp := time.Unix(0, e.GetExpiresUnixNs()).UTC()
		left := "expired"
		if d := exp.Sub(now); d > 0 {
			left = d.Round(time.Second).String()
		}
		t.add(e.GetName(), e.GetIp(), exp.Format(time.RFC3339)+" ("+left+")")
	}
	return t
}

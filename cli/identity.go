package cli

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/weftnet/weft/api/agentapi"
)

func newIdentityCommand(o *options) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "identity",
		Aliases: []string{"id"},
		Short:   "Show security identities (numbers for label sets)",
		Example: `  weft identity list
  weft identity get 65792`,
		Args: cobra.NoArgs,
	}
	cmd.AddCommand(newIdentityListCommand(o), newIdentityGetCommand(o))
	return cmd
}

func newIdentityListCommand(o *options) *cobra.Command {
	return &cobra.Command{
		Use:         "list",
		Annotations: structuredOutput,
		Aliases:     []string{"ls"},
		Short:       "List the identities the agent knows",
		Long: `List the security identities the agent knows, reserved ones (host,
world, health, ...) included. REFS counts this node's endpoints using it.`,
		Example: `  $ weft identity list
  ID      REFS   LABELS
  1       0      reserved:host
  65792   2      k8s:app=web
                 k8s:io.cilium.k8s.policy.cluster=c1
                 k8s:io.kubernetes.pod.namespace=default`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return o.withAgent(cmd.Context(), func(ctx context.Context, t target, a agentapi.AgentClient) error {
				resp, err := a.ListIdentities(ctx, &agentapi.ListIdentitiesRequest{})
				if err != nil {
					return t.rpcError("list identities", err)
				}
				return o.printer(cmd).print(resp, identityTable(resp.GetIdentities()...).write)
			})
		},
	}
}

func identityTable(ids ...*agentapi.Identity) *table {
	t := newTable("ID", "Refs", "Labels")
	for _, id := range ids {
		t.add(itoa(id.GetId()), itoa(id.GetLocalRefs()), strings.Join(id.GetLabels(), "\n"))
	}
	return t
}

func newIdentityGetCommand(o *options) *cobra.Command {
	return &cobra.Command{
		Use:         "get <id>",
		Annotations: structuredOutput,
		Short:       "Show one identity and its labels",
		Example: `  $ weft identity get 65792
  ID:        65792
  Reserved:  no
  Refs:      2
  Labels:    k8s:app=web
             k8s:io.cilium.k8s.policy.cluster=c1
             k8s:io.kubernetes.pod.namespace=default`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: o.agentCompletion(identityCompletions),
		RunE: func(cmd *cobra.Command, args []string) error {
			n, err := strconv.ParseUint(args[0], 10, 32)
			if err != nil {
				return fmt.Errorf("parse identity %q: want a number such as 1 (host) or 65792", args[0])
			}
			return o.withAgent(cmd.Context(), func(ctx context.Context, t target, a agentapi.AgentClient) error {
				id, err := a.GetIdentity(ctx, &agentapi.GetIdentityRequest{Id: uint32(n)})
				if notFound(err) {
					return fmt.Errorf("get identity %d: no such identity on %s; see weft identity list", n, t.where())
				}
				if err != nil {
					return t.rpcError(fmt.Sprintf("get identity %d", n), err)
				}
				return o.printer(cmd).print(id, func(w io.Writer) error {
					var f fields
					f.add("ID", itoa(id.GetId()))
					f.add("Reserved", yesNo(id.GetReserved()))
					f.add("Refs", itoa(id.GetLocalRefs()))
					f.add("Labels", orDash(strings.Join(id.GetLabels(), "\n")))
					return f.write(w)
				})
			})
		},
	}
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

package cli

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/weftnet/weft/api/agentapi"
)

// versionInfo is what `weft version -o json|yaml` prints.
type versionInfo struct {
	Client string `json:"client"`
	// Agent is empty when the agent could not be asked; AgentError says why.
	Agent      string `json:"agent,omitempty"`
	AgentNode  string `json:"agent_node,omitempty"`
	AgentError string `json:"agent_error,omitempty"`
}

func newVersionCommand(o *options, version string) *cobra.Command {
	return &cobra.Command{
		Use:         "version",
		Annotations: structuredOutput,
		Short:       "Print the CLI's version and, if reachable, the agent's",
		Long: `Print the version of this weft CLI and, when the agent answers, the
version of that agent. An unreachable agent is not an error here: the CLI's
version is always printed.`,
		Example: `  $ weft version
  weft:        v0.1.0
  weft-agent:  v0.1.0 (node c1-n1)`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			v := versionInfo{Client: version}
			err := o.withAgent(cmd.Context(), func(ctx context.Context, t target, a agentapi.AgentClient) error {
				st, err := a.Status(ctx, &agentapi.StatusRequest{})
				if err != nil {
					return t.rpcError("ask the agent's version", err)
				}
				v.Agent, v.AgentNode = st.GetVersion(), st.GetNode()
				return nil
			})
			if err != nil {
				v.AgentError = err.Error()
			}
			return o.printer(cmd).print(v, func(w io.Writer) error {
				var f fields
				f.add("weft", version)
				if v.AgentError != "" {
					f.add("weft-agent", "unknown: "+v.AgentError)
				} else {
					f.add("weft-agent", fmt.Sprintf("%s (node %s)", orDash(v.Agent), orDash(v.AgentNode)))
				}
				return f.write(w)
			})
		},
	}
}

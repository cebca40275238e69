package cli

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/weftnet/weft/api/agentapi"
)

func newCompletionCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "completion bash|zsh|fish",
		Short: "Print a shell completion script",
		Long: `Print the completion script for bash, zsh or fish. It completes
commands, flags, output formats, and the environments and nodes of --name
and --node from the testenv directory.`,
		Example: `  # bash, this shell only (needs the bash-completion package)
  source <(weft completion bash)

  # bash, every new shell
  weft completion bash > /etc/bash_completion.d/weft

  # zsh
  weft completion zsh > "${fpath[1]}/_weft"

  # fish
  weft completion fish > ~/.config/fish/completions/weft.fish`,
		ValidArgs: []string{"bash", "zsh", "fish"},
		Args:      cobra.MatchAll(cobra.ExactArgs(1), cobra.OnlyValidArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			out := cmd.OutOrStdout()
			root := cmd.Root()
			switch args[0] {
			case "bash":
				return root.GenBashCompletionV2(out, true)
			case "zsh":
				return root.GenZshCompletion(out)
			case "fish":
				return root.GenFishCompletion(out, true)
			}
			return fmt.Errorf("print completion for %q: want bash, zsh or fish", args[0])
		},
	}
}

// agentCompletion completes the one argument of a get command with what
// list reads from the agent; it offers nothing when the agent is not there.
func (o *options) agentCompletion(list func(ctx context.Context, a agentapi.AgentClient) ([]string, error)) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
		const none = cobra.ShellCompDirectiveNoFileComp
		if len(args) > 0 {
			return nil, none
		}
		// Completion skips the root's PersistentPreRunE: apply WEFT_* here.
		if err := o.complete(cmd.Root().PersistentFlags()); err != nil {
			return nil, none
		}
		ctx := cmd.Context()
		if ctx == nil {
			ctx = context.Background()
		}
		var out []string
		err := o.withAgent(ctx, func(ctx context.Context, _ target, a agentapi.AgentClient) error {
			var err error
			out, err = list(ctx, a)
			return err
		})
		if err != nil {
			return nil, none
		}
		return out, none
	}
}

// endpointCompletions offers each endpoint's pod, with its id and address
// as the description.
func endpointCompletions(ctx context.Context, a agentapi.AgentClient) ([]string, error) {
	resp, err := a.ListEndpoints(ctx, &agentapi.ListEndpointsRequest{})
	if err != nil {
		return nil, err
	}
	var out []string
	for _, ep := range resp.GetEndpoints() {
		name := podName(ep.GetNamespace(), ep.GetPodName())
		if name == "" {
			name = itoa(ep.GetId())
		}
		out = append(out, fmt.Sprintf("%s\tendpoint %d, %s", name, ep.GetId(), ep.GetIpv4()))
	}
	return out, nil
}

// identityCompletions offers each identity, its labels as the description.
func identityCompletions(ctx context.Context, a agentapi.AgentClient) ([]string, error) {
	resp, err := a.ListIdentities(ctx, &agentapi.ListIdentitiesRequest{})
	if err != nil {
		return nil, err
	}
	var out []string
	for _, id := range resp.GetIdentities() {
		out = append(out, itoa(id.GetId())+"\t"+strings.Join(id.GetLabels(), ","))
	}
	return out, nil
}

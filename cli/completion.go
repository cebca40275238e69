package cli

import (
	"fmt"

	"github.com/spf13/cobra"
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

package cli

import (
	"fmt"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/weftnet/weft/testenv"
)

func newTestenvRestartAgentCommand(o *options) *cobra.Command {
	var signal string
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "restart-agent <node>",
		Short: "Kill a node's weft-agent (kill -9 by default), start it again and wait until it is ready",
		Long: `Stop the node's weft-agent with --signal (KILL, a crash, by default; TERM,
a graceful stop), start it again with the same flags and wait until it
answers on its socket. Pods keep their addresses and established
connections: endpoints and pinned BPF maps outlive the agent. Prints how
long the node was without a ready agent.`,
		Example: `  weft testenv restart-agent c1-n1
  weft --name mesh testenv restart-agent c2-n1 --signal TERM`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			sig, err := parseSignal(signal)
			if err != nil {
				return err
			}
			e, err := testenv.Load(o.envName(), cmd.ErrOrStderr(), cliLogger(cmd))
			if err != nil {
				return err
			}
			took, err := e.RestartAgent(cmd.Context(), args[0], sig, timeout)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "agent %s: ready %v after %s\n", args[0], took.Round(10*time.Millisecond), signalName(sig))
			return nil
		},
	}
	cmd.Flags().StringVar(&signal, "signal", "KILL", "how to stop the agent: KILL (a crash) or TERM (a graceful stop)")
	cmd.Flags().DurationVar(&timeout, "timeout", 2*time.Minute, "how long to wait for the restarted agent")
	return cmd
}

func parseSignal(s string) (syscall.Signal, error) {
	switch strings.TrimPrefix(strings.ToUpper(s), "SIG") {
	case "KILL", "9":
		return syscall.SIGKILL, nil
	case "TERM", "15":
		return syscall.SIGTERM, nil
	}
	return 0, fmt.Errorf("--signal %q: accepted are KILL and TERM", s)
}

func signalName(sig syscall.Signal) string {
	if sig == syscall.SIGTERM {
		return "SIGTERM"
	}
	return "SIGKILL"
}

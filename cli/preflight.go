package cli

import (
	"errors"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/weftnet/weft/preflight"
)

// defaultAgentConfig is where the systemd unit's weft-agent reads its
// configuration (deploy/systemd/weft-agent.service).
const defaultAgentConfig = "/etc/weft/agent.yaml"

// errPreflight makes `weft preflight` exit non-zero after printing the
// report (the report says what failed).
var errPreflight = errors.New("preflight: some checks failed (see FAIL above)")

func newPreflightCommand(o *options) *cobra.Command {
	cfg := preflight.DefaultConfig()
	var agentConfig string
	cmd := &cobra.Command{
		Use:         "preflight",
		Annotations: structuredOutput,
		Short:       "Check whether this host can run weft-agent, changing nothing",
		Long: `preflight checks this host for what weft-agent needs, without changing
anything: root privileges, the kernel version, the BPF syscall with the
program and map types of the datapath, tcx or clsact, bpffs, cgroup v2,
VXLAN (tunnel mode), the underlay device and its MTU, rp_filter, and
whether the configured store answers. It prints OK or FAIL per check with
the fix for each failure and exits non-zero if any check failed.

The settings checked are the agent's: the flags below (same names as
weft-agent's), filled from the agent's config file (--agent-config,
default ` + defaultAgentConfig + ` when it exists). bpffs, cgroup v2 and
rp_filter FAIL here when missing, but weft-agent fixes them itself at start.
"weft-agent --preflight" runs the same checks with the agent's own
configuration.`,
		Example: `  # Is this host ready for the agent configured in /etc/weft/agent.yaml?
  weft preflight

  # The same as JSON, for a native-routing cluster whose store is elsewhere
  weft preflight --routing-mode native --kvstore-endpoints http://10.0.0.1:2379 -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			path := agentConfig
			if path == "" {
				if _, err := os.Stat(defaultAgentConfig); err == nil {
					path = defaultAgentConfig
				}
			}
			if path != "" {
				if err := preflight.LoadAgentFile(cmd.Flags(), path); err != nil {
					return err
				}
			}
			rep, err := preflight.Run(cmd.Context(), cfg, cliLogger(cmd))
			if err != nil {
				return err
			}
			if err := o.printer(cmd).print(rep, func(w io.Writer) error { return rep.WriteTable(w) }); err != nil {
				return err
			}
			if !rep.OK {
				return errPreflight
			}
			return nil
		},
	}
	cfg.RegisterFlags(cmd.Flags())
	cmd.Flags().StringVar(&agentConfig, "agent-config", "", "weft-agent's config file to take the settings from (default "+defaultAgentConfig+" if it exists)")
	return cmd
}

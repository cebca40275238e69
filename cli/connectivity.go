package cli

import (
	"fmt"
	"regexp"
	"time"

	"github.com/spf13/cobra"

	"github.com/weftnet/weft/e2e/connectivity"
	"github.com/weftnet/weft/testenv"
)

func newConnectivityCommand(o *options) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "connectivity",
		Short: "Check that traffic flows in a testenv environment",
	}
	var opts connectivity.Options
	var filter string
	test := &cobra.Command{
		Use:   "test",
		Short: "Run the connectivity scenarios against a testenv environment",
		Long: `Run named traffic scenarios against a testenv environment (--name, default
"weft"): pod to pod on one node and across nodes (ICMP, TCP, UDP), pod to
host and host to pod, pod to every node's health endpoint, and packets at the
pod MTU. The test creates its own pods (cx-<node>-a, cx-<node>-b, labelled
app=weft-connectivity; kept for the next run unless --delete-pods) and starts
echo servers in pods and nodes itself.

It prints one line per scenario, then "✅ N/N tests successful" or
"❌ k/N tests failed" with what was sent, from where, to where and what
happened for each failure. The exit code is 1 when a scenario failed.`,
		Example: `  weft connectivity test
  weft connectivity test --name e2e --test 'cross-node'
  weft connectivity test --timeout-per-probe 5s --delete-pods`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if filter != "" {
				re, err := regexp.Compile(filter)
				if err != nil {
					return fmt.Errorf("parse --test %q: %w: accepted is a Go regular expression such as 'cross-node|mtu'", filter, err)
				}
				opts.Filter = re
			}
			e, err := testenv.Load(o.envName(), cmd.ErrOrStderr(), cliLogger(cmd))
			if err != nil {
				return err
			}
			opts.Progress, opts.Log = cmd.OutOrStdout(), cliLogger(cmd)
			rep, err := connectivity.Run(cmd.Context(), e, opts)
			if err != nil {
				return err
			}
			if n := len(rep.Failed()); n > 0 {
				return fmt.Errorf("connectivity test of environment %q: %d of %d scenarios failed (agent logs in %s)", e.Name, n, len(rep.Results), e.Dir)
			}
			return nil
		},
	}
	f := test.Flags()
	f.StringVar(&filter, "test", "", "run only scenarios whose name matches this regular expression")
	f.DurationVar(&opts.Timeout, "timeout-per-probe", 3*time.Second, "how long one probe waits for an answer")
	f.DurationVar(&opts.PropagationTimeout, "propagation-timeout", time.Minute, "how long to wait for every agent to learn the test pods")
	f.BoolVar(&opts.DeletePods, "delete-pods", false, "delete the test pods afterwards")
	cmd.AddCommand(test)
	return cmd
}

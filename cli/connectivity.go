package cli

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"

	"github.com/weftnet/weft/e2e/connectivity"
	"github.com/weftnet/weft/testenv"
)

func newConnectivityCommand(o *options, version string) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "connectivity",
		Short: "Check that traffic flows in a testenv environment",
	}
	var (
		opts      connectivity.Options
		patterns  []string
		junitFile string
		list      bool
		sysdump   bool
	)
	test := &cobra.Command{
		Use:         "test",
		Annotations: structuredOutput,
		Short:       "Run the connectivity scenarios against a testenv environment",
		Long: `Run named traffic scenarios against a testenv environment (--name, default
"weft"): pod to pod on one node and across nodes (ICMP, TCP, UDP), pod to
host and host to pod, pod to every node's health endpoint, and packets at the
pod MTU. The test creates its own pods (cx-<node>-a, cx-<node>-b, labelled
app=weft-connectivity; kept for the next run unless --delete-pods) and starts
echo servers in pods and nodes itself.

It prints one line per scenario, then "✅ N/N tests successful" or
"❌ k/N tests failed" with what was sent, from where, to where and what
happened for each failure. The exit code is 1 when a scenario failed.

--test takes Go regular expressions matched against scenario names,
repeatable; one with "!" in front excludes. -o json prints one JSON object
per scenario on standard output (progress goes to standard error);
--junit-file writes JUnit XML for CI systems; --repeat runs the selection
several times to hunt flakes. --flow-validation checks that each policy
test's exchange left the flow it should (FORWARDED, or DROPPED with
"policy denied") in the flow records of the nodes at either end.

The tests carry cilium-cli's names (no-policies, echo-ingress,
client-egress, all-ingress-deny, cluster-entity, ...) plus Weft's own
(pod-mtu, cross-cluster, global-service); each policy test imports its
policies (weft-cx-* in namespace default, selecting only the test pods)
for its duration. Tests that cannot run against Weft yet are reported as
skipped with the reason. --list prints the catalogue without running
anything.`,
		Example: `  weft connectivity test
  weft connectivity test --name e2e --test 'cross-node' --test '!udp'
  weft connectivity test --repeat 5 --junit-file results.xml
  weft connectivity test -o json | jq 'select(.result == "failure")'
  weft connectivity test --timeout-per-probe 5s --delete-pods
  weft connectivity test --list`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var err error
			if opts.Select, err = connectivity.ParseSelection(patterns); err != nil {
				return err
			}
			if list {
				return printCatalogue(cmd, o.output, opts.Select)
			}
			if opts.FlowValidation, err = connectivity.ParseFlowValidation(opts.FlowValidation); err != nil {
				return err
			}
			if opts.Repeat < 1 {
				return fmt.Errorf("--repeat %d: give 1 or more", opts.Repeat)
			}
			e, err := testenv.Load(o.envName(), cmd.ErrOrStderr(), cliLogger(cmd))
			if err != nil {
				return err
			}
			opts.Progress, opts.Log = cmd.OutOrStdout(), cliLogger(cmd)
			if o.output != formatTable {
				opts.Progress = cmd.ErrOrStderr() // stdout carries only the results
			}
			rep, err := connectivity.Run(cmd.Context(), e, opts)
			if err != nil {
				return err
			}
			if err := writeConnectivityResults(cmd, o.output, junitFile, e.Name, rep); err != nil {
				return err
			}
			if n := len(rep.Failed()); n > 0 {
				if sysdump {
					out := fmt.Sprintf("weft-sysdump-%s-%s.tar.gz", e.Name, time.Now().UTC().Format("20060102-150405"))
					d, err := envSysdump(cmd.Context(), e, version, out, cmd.ErrOrStderr())
					if err != nil {
						fmt.Fprintf(cmd.ErrOrStderr(), "collect a sysdump: %v\n", err)
					} else {
						d.printResult(cmd.ErrOrStderr(), out)
					}
				}
				return fmt.Errorf("connectivity test of environment %q: %d of %d scenarios failed (agent logs in %s)", e.Name, n, len(rep.Results), e.Dir)
			}
			return nil
		},
	}
	f := test.Flags()
	f.StringArrayVar(&patterns, "test", nil, "run only scenarios whose name matches this regular expression (repeatable; '!' in front excludes)")
	f.IntVar(&opts.Repeat, "repeat", 1, "run the selected scenarios this many times")
	f.StringVar(&junitFile, "junit-file", "", "also write the results as JUnit XML to this file")
	f.DurationVar(&opts.Timeout, "timeout-per-probe", 3*time.Second, "how long one probe waits for an answer")
	f.DurationVar(&opts.PropagationTimeout, "propagation-timeout", time.Minute, "how long to wait for every agent to learn the test pods")
	f.BoolVar(&opts.DeletePods, "delete-pods", false, "delete the test pods afterwards")
	f.StringVar(&opts.FlowValidation, "flow-validation", connectivity.FlowValidationWarning,
		"check the policy tests' flows in the nodes' flow records: strict (a missing flow fails), warning (printed), disabled")
	f.BoolVar(&sysdump, "collect-sysdump-on-failure", false, "when a scenario fails, write weft sysdump of the environment to weft-sysdump-<environment>-<time>.tar.gz")
	f.BoolVar(&list, "list", false, "list the tests (those --test selects), what each proves or why it is skipped; run nothing")
	cmd.AddCommand(test)
	return cmd
}

// writeConnectivityResults prints the results as JSON or YAML lines when
// asked, and writes the JUnit file.
func writeConnectivityResults(cmd *cobra.Command, output, junitFile, env string, rep connectivity.Report) error {
	switch output {
	case formatJSON:
		if err := rep.WriteJSON(cmd.OutOrStdout()); err != nil {
			return err
		}
	case formatYAML:
		var b strings.Builder
		if err := rep.WriteJSON(&b); err != nil {
			return err
		}
		for _, line := range strings.Split(strings.TrimSpace(b.String()), "\n") {
			y, err := yaml.JSONToYAML([]byte(line))
			if err != nil {
				return fmt.Errorf("convert results to YAML: %w", err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "---\n%s", y)
		}
	}
	if junitFile == "" {
		return nil
	}
	f, err := os.Create(junitFile)
	if err != nil {
		return fmt.Errorf("write --junit-file: %w", err)
	}
	if err := rep.WriteJUnit(f, "weft connectivity test "+env); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// printCatalogue prints the tests --test selects: a table, or one JSON
// object per test with -o json.
func printCatalogue(cmd *cobra.Command, output string, sel connectivity.Selection) error {
	var entries []connectivity.CatalogueEntry
	for _, e := range connectivity.Catalogue() {
		if sel.Match(e.Name) {
			entries = append(entries, e)
		}
	}
	if len(entries) == 0 {
		return fmt.Errorf("no test matches --test %s (weft connectivity test --list shows them all)", sel)
	}
	w := cmd.OutOrStdout()
	switch output {
	case formatJSON:
		enc := json.NewEncoder(w)
		for _, e := range entries {
			if err := enc.Encode(e); err != nil {
				return err
			}
		}
		return nil
	case formatYAML:
		for _, e := range entries {
			y, err := yaml.Marshal(e)
			if err != nil {
				return err
			}
			fmt.Fprintf(w, "---\n%s", y)
		}
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 0, 3, ' ', 0)
	fmt.Fprintln(tw, "TEST\tRUNS\tWHAT IT CHECKS, OR WHY IT IS SKIPPED")
	for _, e := range entries {
		runs, text := "yes", e.What
		if e.Skip != "" {
			runs, text = "skipped", e.Skip
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", e.Name, runs, text)
	}
	return tw.Flush()
}

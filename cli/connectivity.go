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
		Short: "Check that traffic flows in a testenv environment or on standalone hosts",
	}
	var (
		opts      connectivity.Options
		patterns  []string
		junitFile string
		list      bool
		sysdump   bool
		agents    []string
		hosts     connectivity.Hosts
	)
	test := &cobra.Command{
		Use:         "test",
		Annotations: structuredOutput,
		Short:       "Run the connectivity scenarios against a testenv environment or standalone hosts",
		Long: `Run named traffic scenarios against a testenv environment (--name, default
"weft"), or, with --agent, against standalone hosts: pod to pod on one node and across nodes (ICMP, TCP, UDP), pod to
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
anything.

On standalone hosts (weft-agent run by systemd, docs/deploy-hosts.md) give
every node to test as --agent <node>=<agent socket>, as root. The socket
can be the local agent's (/var/run/weft/agent.sock) or one forwarded from
another host with ssh:
  ssh -N -L /tmp/host2.sock:/var/run/weft/agent.sock root@host2 &
Each node's agent creates the test pods there (Connectivity API): a
network namespace per pod, wired by the node's installed CNI configuration
(/etc/cni/net.d/10-weft.conflist, weft-cni from /opt/cni/bin; --cni-conflist
and --cni-bin-dir change them, "{node}" in them becomes the node's name),
with echo servers in it; the agents also dial and ping for the test, so
traffic only flows between the nodes and their test pods. The clusters and
node addresses come from the agents. Tests that need a testenv environment
(the outside server, the agents' log files) are reported as skipped.`,
		Example: `  weft connectivity test
  weft connectivity test --name e2e --test 'cross-node' --test '!udp'
  weft connectivity test --repeat 5 --junit-file results.xml
  weft connectivity test -o json | jq 'select(.result == "failure")'
  weft connectivity test --timeout-per-probe 5s --delete-pods
  weft connectivity test --list
  weft connectivity test --agent host1=/var/run/weft/agent.sock --agent host2=/tmp/host2.sock
  weft connectivity test --agent host1=/var/run/weft/agent.sock --agent host2=/tmp/host2.sock --delete-pods`,
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
			opts.Progress, opts.Log = cmd.OutOrStdout(), cliLogger(cmd)
			if o.output != formatTable {
				opts.Progress = cmd.ErrOrStderr() // stdout carries only the results
			}
			if len(agents) > 0 {
				if cmd.Flags().Changed("name") {
					return fmt.Errorf("--name %q and --agent: give either a testenv environment (--name) or standalone hosts (--agent)", o.name)
				}
				if sysdump {
					return fmt.Errorf("--collect-sysdump-on-failure collects a testenv environment's sysdump; on standalone hosts run weft sysdump on each host")
				}
				if hosts.Agents, err = parseAgents(agents); err != nil {
					return err
				}
				rep, err := connectivity.RunHosts(cmd.Context(), hosts, opts)
				if err != nil {
					return err
				}
				if err := writeConnectivityResults(cmd, o.output, junitFile, "hosts", rep); err != nil {
					return err
				}
				if n := len(rep.Failed()); n > 0 {
					return fmt.Errorf("connectivity test of %d standalone hosts: %d of %d scenarios failed (agent logs on the hosts: journalctl -u weft-agent)", len(hosts.Agents), n, len(rep.Results))
				}
				return nil
			}
			if cmd.Flags().Changed("cni-bin-dir") || cmd.Flags().Changed("cni-conflist") {
				return fmt.Errorf("--cni-bin-dir and --cni-conflist apply to standalone hosts: give --agent <node>=<socket> too")
			}
			e, err := testenv.Load(o.envName(), cmd.ErrOrStderr(), cliLogger(cmd))
			if err != nil {
				return err
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
	f.StringArrayVar(&agents, "agent", nil, "test standalone hosts: a node and its agent's unix socket, <node>=<path> (repeatable, one per node; the socket may be forwarded with ssh -L)")
	f.StringVar(&hosts.CNIBinDir, "cni-bin-dir", "", "with --agent: the CNI plugin directory on the nodes (default /opt/cni/bin; {node} becomes the node's name)")
	f.StringVar(&hosts.CNIConflist, "cni-conflist", "", "with --agent: the CNI configuration list on the nodes (default /etc/cni/net.d/10-weft.conflist; {node} becomes the node's name)")
	f.BoolVar(&list, "list", false, "list the tests (those --test selects), what each proves or why it is skipped; run nothing")
	cmd.AddCommand(test)
	return cmd
}

// parseAgents reads the --agent values: <node>=<unix socket>, one per node,
// each socket present.
func parseAgents(values []string) ([]connectivity.Agent, error) {
	var out []connectivity.Agent
	seen := map[string]string{}
	for _, v := range values {
		node, path, ok := strings.Cut(v, "=")
		if !ok || node == "" || path == "" {
			return nil, fmt.Errorf("--agent %q: give <node>=<agent socket>, e.g. --agent host1=/var/run/weft/agent.sock", v)
		}
		if prev, dup := seen[node]; dup {
			return nil, fmt.Errorf("--agent %q: node %s is already given (--agent %s=%s): one --agent per node", v, node, node, prev)
		}
		fi, err := os.Stat(path)
		switch {
		case err != nil:
			return nil, fmt.Errorf("--agent %q: no agent socket at %s (is weft-agent running there, or the ssh -L forward up?)", v, path)
		case fi.Mode()&os.ModeSocket == 0:
			return nil, fmt.Errorf("--agent %q: %s is not a unix socket (give the agent's socket, e.g. /var/run/weft/agent.sock)", v, path)
		}
		seen[node] = path
		out = append(out, connectivity.Agent{Node: node, Socket: path})
	}
	return out, nil
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

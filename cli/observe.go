package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/mattn/go-isatty"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/weftnet/weft/api/agentapi"
	"github.com/weftnet/weft/flow"
)

// Output formats of weft observe (its own -o, shadowing the shared one).
func observeFormats() []string { return []string{"compact", "dict", "json", "jsonpb"} }

// defaultLast is how many flows weft observe shows without --last,
// --since, --all or --follow.
const defaultLast = 20

type observeOptions struct {
	follow, all  bool
	last         uint64
	since, until string
	output       string
	color        string
	nodeName     bool
	filters      filterFlags
	relay        relayFlags
	allNodes     bool
	loc          *time.Location // of the times printed: the clock's
}

// filterFlags keeps the filter flags in command-line order, so that --not
// applies to the flag after it.
type filterFlags struct {
	negateNext bool
	given      []givenFilter
}

type givenFilter struct {
	kind, value string
	negated     bool
}

type filterValue struct {
	kind string
	set  *filterFlags
}

func (v filterValue) String() string { return "" }
func (v filterValue) Type() string   { return "filter" }
func (v filterValue) Set(s string) error {
	v.set.given = append(v.set.given, givenFilter{kind: v.kind, value: s, negated: v.set.negateNext})
	v.set.negateNext = false
	return nil
}

type notValue struct{ set *filterFlags }

func (v notValue) String() string   { return "false" }
func (v notValue) Type() string     { return "bool" }
func (v notValue) IsBoolFlag() bool { return true }
func (v notValue) Set(s string) error {
	b, err := strconv.ParseBool(s)
	if err != nil {
		return fmt.Errorf("--not takes no value")
	}
	v.set.negateNext = b
	return nil
}

// request turns the filter flags into the request's whitelist (one filter:
// every flag must hold) and blacklist (one filter per negated flag: none
// may hold).
func (f *filterFlags) request(req *agentapi.GetFlowsRequest) error {
	if f.negateNext {
		return errors.New("--not must come before a filter flag (e.g. --not --verdict FORWARDED)")
	}
	keep := &agentapi.FlowFilter{}
	for _, g := range f.given {
		target := keep
		if g.negated {
			target = &agentapi.FlowFilter{}
			req.Blacklist = append(req.Blacklist, target)
		}
		if err := flow.AddFilter(target, g.kind, g.value); err != nil {
			return err
		}
		if !g.negated && len(req.Whitelist) == 0 {
			req.Whitelist = []*agentapi.FlowFilter{keep}
		}
	}
	return nil
}

var filterHelp = map[string]string{
	"pod":         "flows from or to pods `[namespace/]name` (a name prefix)",
	"from-pod":    "flows from pods `[namespace/]name` (a name prefix)",
	"to-pod":      "flows to pods `[namespace/]name` (a name prefix)",
	"namespace":   "flows from or to pods of `namespace`",
	"label":       "flows from or to endpoints whose labels match `selector` (key, key=value, key!=value, comma: all)",
	"from-label":  "flows from endpoints whose labels match `selector`",
	"to-label":    "flows to endpoints whose labels match `selector`",
	"identity":    "flows from or to security `identity` (number or host, world, remote-node, ...)",
	"ip":          "flows from or to an `address` or CIDR",
	"port":        "flows from or to `port`",
	"protocol":    "flows of `protocol`: tcp, udp, icmp, icmpv6, sctp",
	"verdict":     "flows with `verdict`: FORWARDED, DROPPED, REDIRECTED",
	"drop-reason": "drops for `reason` (e.g. policy-denied)",
	"node-name":   "flows observed by node `name` (--node picks the agent asked)",
	"cluster":     "flows observed in `cluster`",
	"service":     "flows load-balanced for service `[namespace/]name` (the frontend asked for, the backend chosen)",
}

func newObserveCommand(o *options) *cobra.Command {
	oo := &observeOptions{output: "compact", color: "auto"}
	cmd := &cobra.Command{
		Use:   "observe",
		Short: "Show the flows the datapath forwarded and dropped",
		Long: `Show flows: every drop and every new connection the datapath saw, with
pods, the observation point, the verdict and the drop reason. Without
--follow, --since, --all or --last it shows the last ` + strconv.Itoa(defaultLast) + ` flows the node
keeps (its ring of recent flows); with --follow it keeps printing new ones.

Filter flags combine: values of one flag are alternatives (--port 80
--port 443), different flags must all hold (--namespace dev --verdict
DROPPED). --not negates the filter flag after it; several negated flags
exclude a flow if any of them holds. A pod or label filter without from-/to-
matches either end.

-o compact prints one line per flow, dict a block per flow, json one flow
per line (proto field names, for jq), jsonpb the API's messages in
canonical proto JSON. Lost flows and unreachable nodes are reported on
stderr. Colours are used on a terminal only (--color).

By default flows come from one node's agent (--socket, --name/--node); with
--all-nodes from every node of a testenv environment, all its clusters,
merged in time order, by an in-process relay; with --relay from a running
relay (weft-apiserver --relay-listen), which merges the flows of every
node of its cluster and of every connected cluster's relay. In a testenv
environment with clustermesh, --relay c1 reads cluster c1's relay with its
admin certificate.`,
		Example: `  # The last 20 flows of this node
  weft observe

  # Follow the drops of namespace dev
  weft observe -f --namespace dev --verdict DROPPED

  # Everything of the last 5 minutes except DNS, as JSON for jq
  weft observe --since 5m --not --port 53 -o json | jq .destination.pod_name

  # Every node of every cluster of testenv environment "weft", drops only
  weft observe --all-nodes --verdict DROPPED --print-node-name

  # All nodes of every connected cluster, through a relay
  weft observe -f --relay 10.0.0.2:4245 --tls-ca ca.pem --tls-cert me.pem --tls-key me-key.pem

  # The same through cluster c1's relay of testenv environment "weft"
  weft --name weft observe --relay c1 --cluster c2 --last 10`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			req, err := oo.request(cmd, o)
			if err != nil {
				return err
			}
			if oo.relay.address != "" {
				return oo.fromRelay(cmd, o, req)
			}
			if oo.allNodes {
				if o.socketFlag {
					return errors.New("--all-nodes reads every node of a testenv environment (--name), not one --socket")
				}
				client, stop, err := envRelay(cmd, o.envName())
				if err != nil {
					return err
				}
				defer stop()
				return oo.stream(cmd, client, req)
			}
			t, err := o.target()
			if err != nil {
				return err
			}
			client, closeConn, err := agentapi.DialObserver(cmd.Context(), t.socket)
			if err != nil {
				return fmt.Errorf("reach weft-agent at %s: is the agent running? (%w)", t, err)
			}
			defer closeConn()
			if err := oo.stream(cmd, client, req); err != nil {
				return t.rpcError("read flows", err)
			}
			return nil
		},
	}
	fs := cmd.Flags()
	fs.BoolVarP(&oo.follow, "follow", "f", false, "keep printing new flows until interrupted")
	fs.Uint64Var(&oo.last, "last", 0, fmt.Sprintf("show the last N matching flows (default %d when neither --follow, --since nor --all is given)", defaultLast))
	fs.BoolVar(&oo.all, "all", false, "show every flow the node keeps")
	fs.StringVar(&oo.since, "since", "", "flows since a `time`: a duration before now (5m), RFC 3339, \"2006-01-02 15:04:05\" or 15:04:05 (today)")
	fs.StringVar(&oo.until, "until", "", "flows until a `time` (same forms as --since)")
	fs.StringVarP(&oo.output, "output", "o", oo.output, "output format: "+strings.Join(observeFormats(), ", "))
	fs.StringVar(&oo.color, "color", oo.color, "colour the output: auto (on a terminal), always, never")
	fs.BoolVar(&oo.nodeName, "print-node-name", false, "print the node that observed each flow")
	fs.Var(notValue{&oo.filters}, "not", "negate the filter flag that follows")
	fs.Lookup("not").NoOptDefVal = "true"
	for _, kind := range flow.FilterKinds() {
		fs.Var(filterValue{kind: kind, set: &oo.filters}, kind, filterHelp[kind])
	}
	oo.relay.register(fs)
	cmd.AddCommand(newObserveUICommand(o))
	fs.BoolVar(&oo.allNodes, "all-nodes", false, "merge every node of the testenv environment (every cluster) in time order; unreachable nodes are reported")
	_ = cmd.RegisterFlagCompletionFunc("output", cobra.FixedCompletions(observeFormats(), cobra.ShellCompDirectiveNoFileComp))
	_ = cmd.RegisterFlagCompletionFunc("verdict", cobra.FixedCompletions([]string{"FORWARDED", "DROPPED", "REDIRECTED"}, cobra.ShellCompDirectiveNoFileComp))
	_ = cmd.RegisterFlagCompletionFunc("protocol", cobra.FixedCompletions([]string{"tcp", "udp", "icmp", "icmpv6", "sctp"}, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

// request checks the flags and builds the request.
func (oo *observeOptions) request(cmd *cobra.Command, o *options) (*agentapi.GetFlowsRequest, error) {
	if !slices.Contains(observeFormats(), oo.output) {
		return nil, fmt.Errorf("-o %q: accepted: %s", oo.output, strings.Join(observeFormats(), ", "))
	}
	if !slices.Contains([]string{"auto", "always", "never"}, oo.color) {
		return nil, fmt.Errorf("--color %q: accepted: auto, always, never", oo.color)
	}
	req := &agentapi.GetFlowsRequest{Follow: oo.follow, Number: oo.last}
	now := o.now()
	oo.loc = now.Location()
	for _, tf := range []struct {
		flag, value string
		into        *int64
	}{{"since", oo.since, &req.SinceNs}, {"until", oo.until, &req.UntilNs}} {
		if tf.value == "" {
			continue
		}
		t, err := flow.ParseTime(tf.value, now)
		if err != nil {
			return nil, fmt.Errorf("--%s: %w", tf.flag, err)
		}
		*tf.into = t.UnixNano()
	}
	if req.UntilNs != 0 && req.SinceNs > req.UntilNs {
		return nil, fmt.Errorf("--since %s is after --until %s: no flow can match", oo.since, oo.until)
	}
	if oo.all && cmd.Flags().Changed("last") {
		return nil, errors.New("--all and --last contradict each other: choose one")
	}
	if !oo.all && !oo.follow && req.SinceNs == 0 && !cmd.Flags().Changed("last") {
		req.Number = defaultLast
	}
	if err := oo.filters.request(req); err != nil {
		return nil, err
	}
	return req, nil
}

// stream prints the flows of one observer.
func (oo *observeOptions) stream(cmd *cobra.Command, client agentapi.ObserverClient, req *agentapi.GetFlowsRequest) error {
	ctx, cancel := context.WithCancel(cmd.Context())
	defer cancel()
	s, err := client.GetFlows(ctx, req)
	if err != nil {
		return err
	}
	p := newFlowPrinter(cmd.OutOrStdout(), cmd.ErrOrStderr(), oo.output, oo.useColor(cmd.OutOrStdout()), oo.nodeName)
	p.loc = oo.loc
	for {
		resp, err := s.Recv()
		if errors.Is(err, io.EOF) || (err != nil && cmd.Context().Err() != nil) {
			return p.flush()
		}
		if err != nil {
			return err
		}
		if err := p.print(resp); err != nil {
			return err
		}
	}
}

func (oo *observeOptions) useColor(w io.Writer) bool {
	switch oo.color {
	case "always":
		return true
	case "never":
		return false
	}
	f, ok := w.(*os.File)
	return ok && oo.output != "json" && oo.output != "jsonpb" && isatty.IsTerminal(f.Fd())
}

var _ pflag.Value = filterValue{}

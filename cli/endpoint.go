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

func newEndpointCommand(o *options) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "endpoint",
		Aliases: []string{"ep"},
		Short:   "Show the endpoints (pods) of a node",
		Example: `  weft endpoint list
  weft endpoint get default/web-1`,
		Args: cobra.NoArgs,
	}
	cmd.AddCommand(newEndpointListCommand(o), newEndpointGetCommand(o))
	return cmd
}

func newEndpointListCommand(o *options) *cobra.Command {
	return &cobra.Command{
		Use:         "list",
		Annotations: structuredOutput,
		Aliases:     []string{"ls"},
		Short:       "List the endpoints of the node",
		Long: `List the node's endpoints: one per pod interface, with its address,
security identity, whether policy is enforced in each direction, its state
and its identity labels.`,
		Example: `  $ weft endpoint list
  ID   POD             IPV4            IDENTITY   INGRESS POLICY   EGRESS POLICY   STATE   LABELS
  7    default/web-1   10.100.1.5/32   65792      Enabled          Disabled        ready   k8s:app=web
                                                                                           k8s:io.kubernetes.pod.namespace=default`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return o.withAgent(cmd.Context(), func(ctx context.Context, t target, a agentapi.AgentClient) error {
				resp, err := a.ListEndpoints(ctx, &agentapi.ListEndpointsRequest{})
				if err != nil {
					return t.rpcError("list endpoints", err)
				}
				return o.printer(cmd).print(resp, endpointTable(resp).write)
			})
		},
	}
}

// endpointTable lists the endpoints; with global addressing each IPv4
// cell also gives the global address ("10.100.1.5/32 (global 242.1.1.5)").
func endpointTable(resp *agentapi.ListEndpointsResponse) *table {
	t := newTable("ID", "Pod", "IPv4", "Identity", "Ingress Policy", "Egress Policy", "State", "Labels")
	for _, ep := range resp.GetEndpoints() {
		p := ep.GetPolicy()
		ip := ep.GetIpv4()
		if g := ep.GetGlobalIpv4(); g != "" {
			ip += " (global " + g + ")"
		}
		t.add(itoa(ep.GetId()), podName(ep.GetNamespace(), ep.GetPodName()), ip,
			strconv.FormatUint(uint64(ep.GetIdentity()), 10),
			enforcement(p.GetIngressEnforced()), enforcement(p.GetEgressEnforced()),
			ep.GetState(), strings.Join(ep.GetLabels(), "\n"))
	}
	return t
}

func newEndpointGetCommand(o *options) *cobra.Command {
	return &cobra.Command{
		Use:         "get <id|container-id|ip|namespace/pod>",
		Annotations: structuredOutput,
		Short:       "Show one endpoint and its effective policy",
		Long: `Show one endpoint, found by its numeric id, its container id, its IP
address or its pod (namespace/name), with the policy in effect on it. A
number is taken as an endpoint id, a value with a slash as a pod (unless it
is an IP prefix such as 10.100.1.5/32), an IP address as an IP, anything
else as a container id.`,
		Example: `  weft endpoint get 7
  weft endpoint get default/web-1
  weft endpoint get 10.100.1.5 -o json`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: o.agentCompletion(endpointCompletions),
		RunE: func(cmd *cobra.Command, args []string) error {
			req, err := endpointQuery(args[0])
			if err != nil {
				return err
			}
			return o.withAgent(cmd.Context(), func(ctx context.Context, t target, a agentapi.AgentClient) error {
				ep, err := a.GetEndpoint(ctx, req)
				if notFound(err) {
					return fmt.Errorf("get endpoint %q: no such endpoint on %s; see weft endpoint list", args[0], t.where())
				}
				if err != nil {
					return t.rpcError(fmt.Sprintf("get endpoint %q", args[0]), err)
				}
				return o.printer(cmd).print(ep, func(w io.Writer) error { return writeEndpoint(w, ep) })
			})
		},
	}
}

// endpointQuery reads what the user gave: a number is an endpoint id, a
// value with a slash a pod, an address an IP, anything else a container id.
func endpointQuery(arg string) (*agentapi.GetEndpointRequest, error) {
	switch {
	case arg == "":
		return nil, fmt.Errorf("parse endpoint %q: want an id (7), a container id, an IP (10.100.1.5) or namespace/pod", arg)
	case isDigits(arg):
		id, err := strconv.ParseUint(arg, 10, 16)
		if err != nil {
			return nil, fmt.Errorf("parse endpoint id %q: %w", arg, err)
		}
		return &agentapi.GetEndpointRequest{Id: uint32(id)}, nil
	case strings.Contains(arg, "/") && !isIPPrefix(arg):
		ns, name, _ := strings.Cut(arg, "/")
		if ns == "" || name == "" || strings.Contains(name, "/") {
			return nil, fmt.Errorf("parse pod %q: want namespace/name such as default/web-1", arg)
		}
		return &agentapi.GetEndpointRequest{Pod: arg}, nil
	case isIPPrefix(arg):
		ip, _, _ := strings.Cut(arg, "/")
		return &agentapi.GetEndpointRequest{Ip: ip}, nil
	}
	return &agentapi.GetEndpointRequest{ContainerId: arg}, nil
}

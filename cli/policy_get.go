package cli

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/weftnet/weft/api/agentapi"
)

func newPolicyGetCommand(o *options) *cobra.Command {
	return &cobra.Command{
		Use:         "get <namespace>/<name> | <name>",
		Annotations: structuredOutput,
		Short:       "Show a policy's rules and the endpoints each selects",
		Long: `Show a policy: each rule's endpoint selector (in canonical form, with the
namespace a namespaced policy implies), what it allows or denies in each
direction, and the endpoints of the asked node it selects.`,
		Example: `  $ weft policy get default/deathstar
  Name:     default/deathstar
  Kind:     cilium.io/v2 CiliumNetworkPolicy
  Source:   cli
  Rules:    1
  Selects:  1 endpoint(s) on this node

  #   SELECTOR                                                                       DIRECTION   RULE                                                                                  ENDPOINTS
  0   any:class=deathstar, any:org=empire, k8s:io.kubernetes.pod.namespace=default   ingress     allow endpoints {any:org=empire, k8s:io.kubernetes.pod.namespace=default} on 80/TCP   7 default/deathstar 10.100.1.5`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ns, name, err := parsePolicyName(args[0])
			if err != nil {
				return err
			}
			return o.withPolicy(cmd.Context(), func(ctx context.Context, t target, p agentapi.PolicyClient) error {
				d, err := p.Get(ctx, &agentapi.GetPolicyRequest{Namespace: ns, Name: name})
				if notFound(err) {
					hint := ""
					if ns == "" {
						hint = "; a namespaced policy is named <namespace>/<name>"
					}
					return fmt.Errorf("get policy %s: no such policy on %s (see weft policy list%s)", args[0], t, hint)
				}
				if err != nil {
					return t.rpcError("get policy "+args[0], err)
				}
				return o.printer(cmd).print(d, func(w io.Writer) error { return writePolicy(w, d) })
			})
		},
	}
}

// writePolicy is the human form of weft policy get.
func writePolicy(w io.Writer, d *agentapi.PolicyDetail) error {
	s := d.GetSummary()
	var f fields
	f.add("Name", policyID(s.GetNamespace(), s.GetName()))
	f.add("Kind", orDash(strings.TrimSpace(s.GetApiVersion()+" "+s.GetKind())))
	f.add("Source", orDash(s.GetSource()))
	if s.GetError() != "" {
		f.add("Error", s.GetError()+" (not enforced)")
		return f.write(w)
	}
	f.add("Rules", itoa(s.GetRules()))
	f.add("Selects", fmt.Sprintf("%d endpoint(s) on this node", s.GetSelectedEndpoints()))
	if err := f.write(w); err != nil {
		return err
	}
	if _, err := fmt.Fprintln(w); err != nil {
		return err
	}
	t := newTable("#", "Selector", "Direction", "Rule", "Endpoints")
	for _, r := range d.GetRules() {
		var eps []string
		for _, ep := range r.GetEndpoints() {
			eps = append(eps, fmt.Sprintf("%d %s %s", ep.GetId(), ep.GetPod(), ep.GetIpv4()))
		}
		type line struct{ dir, rule string }
		var lines []line
		for _, l := range r.GetIngress() {
			lines = append(lines, line{"ingress", l})
		}
		for _, l := range r.GetEgress() {
			lines = append(lines, line{"egress", l})
		}
		if r.GetIngressEnforced() && len(r.GetIngress()) == 0 {
			lines = append(lines, line{"ingress", "deny all (default deny, no allow rule)"})
		}
		if r.GetEgressEnforced() && len(r.GetEgress()) == 0 {
			lines = append(lines, line{"egress", "deny all (default deny, no allow rule)"})
		}
		if len(lines) == 0 {
			lines = append(lines, line{"-", "none"})
		}
		var dirs, rules []string
		for _, l := range lines {
			dirs, rules = append(dirs, l.dir), append(rules, l.rule)
		}
		t.add(itoa(r.GetIndex()), r.GetSelector(), strings.Join(dirs, "\n"), strings.Join(rules, "\n"), orDash(strings.Join(eps, "\n")))
	}
	return t.write(w)
}

package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/weftnet/weft/api/agentapi"
)

func newPolicyCommand(o *options) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "policy",
		Short: "Import, inspect and delete network policies",
		Long: `Network policies are CiliumNetworkPolicy, CiliumClusterwideNetworkPolicy
(cilium.io/v2) and Kubernetes NetworkPolicy (networking.k8s.io/v1) documents.
They are kept in the cluster's store, so one import through any node's agent
is enforced by every agent. A namespaced policy is named <namespace>/<name>,
a clusterwide one by its name alone.`,
		Example: `  weft policy import -f deathstar.yaml
  weft policy list
  weft policy get default/deathstar
  weft policy delete default/deathstar`,
		Args: cobra.NoArgs,
	}
	cmd.AddCommand(newPolicyImportCommand(o), newPolicyDeleteCommand(o), newPolicyGetCommand(o), newPolicyListCommand(o))
	return cmd
}

// withPolicy is withAgent for the Policy service on the same socket.
func (o *options) withPolicy(ctx context.Context, fn func(ctx context.Context, t target, p agentapi.PolicyClient) error) error {
	return withClient(ctx, o, agentapi.NewPolicyClient, fn)
}

// parsePolicyName reads <namespace>/<name>, or <name> for a clusterwide policy.
func parsePolicyName(arg string) (ns, name string, err error) {
	ns, name, ok := strings.Cut(arg, "/")
	if !ok {
		ns, name = "", arg
	}
	if name == "" || strings.Contains(name, "/") || (ok && ns == "") {
		return "", "", fmt.Errorf("policy %q: name it <namespace>/<name>, e.g. default/deathstar, or <name> for a clusterwide policy", arg)
	}
	return ns, name, nil
}

// noPolicyToDelete is the error of a delete that found nothing: it names
// the policies of that name in other namespaces (a plain name means a
// clusterwide policy, which `import` of a namespaced one never printed).
func noPolicyToDelete(ctx context.Context, p agentapi.PolicyClient, ns, name string) error {
	msg := fmt.Sprintf("no policy %s in the store: nothing deleted", policyID(ns, name))
	if ns == "" {
		msg = fmt.Sprintf("no clusterwide policy %s in the store: nothing deleted (a name without a namespace is a clusterwide policy)", name)
	}
	list, err := p.List(ctx, &agentapi.ListPoliciesRequest{})
	if err != nil {
		return errors.New(msg)
	}
	var matches []string
	for _, s := range list.GetPolicies() {
		if s.GetName() == name && s.GetNamespace() != ns {
			matches = append(matches, policyID(s.GetNamespace(), s.GetName()))
		}
	}
	if len(matches) > 0 {
		return fmt.Errorf("%s; did you mean %s? (weft policy delete %s)", msg, strings.Join(matches, " or "), matches[0])
	}
	return fmt.Errorf("%s; see weft policy list", msg)
}

func policyID(ns, name string) string {
	if ns == "" {
		return name
	}
	return ns + "/" + name
}

func newPolicyImportCommand(o *options) *cobra.Command {
	var (
		file      string
		namespace string
		dryRun    bool
	)
	cmd := &cobra.Command{
		Use:         "import -f FILE [-n NAMESPACE]",
		Annotations: structuredOutput,
		Short:       "Store the policies of a YAML file (all of them, or none)",
		Long: `Read one or more policy documents (separated by "---" lines) from FILE,
or from standard input with -f -, and store them. Every document is checked
first; if any is invalid or cannot be enforced, nothing is stored and each
problem is printed with the document and field it concerns.

A namespaced policy (CiliumNetworkPolicy, NetworkPolicy) without
metadata.namespace goes into namespace "default", or into the one given
with -n, as kubectl apply -n does; a document that names another namespace
than -n is refused. Clusterwide policies have no namespace.`,
		Example: `  $ weft policy import -f deathstar.yaml
  imported cilium.io/v2 CiliumNetworkPolicy default/deathstar

  $ weft policy import -f l3-rule.yaml -n dev
  imported cilium.io/v2 CiliumNetworkPolicy dev/l3-rule

  $ kubectl get networkpolicy -A -o yaml | weft policy import -f - --dry-run`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			data, err := readFileFlag(cmd, file, "import policies")
			if err != nil {
				return err
			}
			return o.withPolicy(cmd.Context(), func(ctx context.Context, t target, p agentapi.PolicyClient) error {
				resp, err := p.Import(ctx, &agentapi.ImportPolicyRequest{Documents: data, Source: "cli", DryRun: dryRun, Namespace: namespace})
				if s, ok := status.FromError(err); ok && s.Code() == codes.InvalidArgument {
					return fmt.Errorf("%s", s.Message())
				}
				if err != nil {
					return t.rpcError("import policies", err)
				}
				verb := "imported"
				if dryRun {
					verb = "valid"
				}
				var invalid int
				err = o.printer(cmd).print(resp, func(w io.Writer) error {
					for _, d := range resp.GetDocuments() {
						if d.GetError() != "" {
							invalid++
							fmt.Fprintf(w, "invalid %s\n", d.GetError())
							continue
						}
						fmt.Fprintf(w, "%s %s %s %s\n", verb, d.GetApiVersion(), d.GetKind(), policyID(d.GetNamespace(), d.GetName()))
					}
					return nil
				})
				if err == nil && invalid > 0 {
					err = fmt.Errorf("import policies: %d of %d documents are invalid; nothing was stored", invalid, len(resp.GetDocuments()))
				}
				return err
			})
		},
	}
	cmd.Flags().StringVarP(&file, "file", "f", "", "YAML file of policy documents; - for standard input")
	cmd.Flags().StringVarP(&namespace, "namespace", "n", "", `namespace of the namespaced documents that name none (default "default")`)
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "check the documents, store nothing")
	return cmd
}

func newPolicyDeleteCommand(o *options) *cobra.Command {
	return &cobra.Command{
		Use:         "delete <namespace>/<name> | <name>",
		Annotations: structuredOutput,
		Short:       "Remove a policy from the store (every agent stops enforcing it)",
		Example: `  $ weft policy delete default/deathstar
  deleted policy default/deathstar`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ns, name, err := parsePolicyName(args[0])
			if err != nil {
				return err
			}
			return o.withPolicy(cmd.Context(), func(ctx context.Context, t target, p agentapi.PolicyClient) error {
				resp, err := p.Delete(ctx, &agentapi.DeletePolicyRequest{Namespace: ns, Name: name})
				if err != nil {
					return t.rpcError("delete policy "+args[0], err)
				}
				if !resp.GetExisted() {
					return noPolicyToDelete(ctx, p, ns, name)
				}
				return o.printer(cmd).print(resp, func(w io.Writer) error {
					_, err := fmt.Fprintf(w, "deleted policy %s\n", policyID(ns, name))
					return err
				})
			})
		},
	}
}

func newPolicyListCommand(o *options) *cobra.Command {
	return &cobra.Command{
		Use:         "list",
		Annotations: structuredOutput,
		Aliases:     []string{"ls"},
		Short:       "List the policies in the store",
		Long: `List the policies in the store. ENDPOINTS counts the endpoints of the
asked node that some rule of the policy selects. A policy whose stored
document cannot be enforced shows its error.`,
		Example: `  $ weft policy list
  NAME                KIND                  RULES   ENDPOINTS   SOURCE
  default/deathstar   CiliumNetworkPolicy   1       1           cli`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return o.withPolicy(cmd.Context(), func(ctx context.Context, t target, p agentapi.PolicyClient) error {
				resp, err := p.List(ctx, &agentapi.ListPoliciesRequest{})
				if err != nil {
					return t.rpcError("list policies", err)
				}
				tb := newTable("Name", "Kind", "Rules", "Endpoints", "Source")
				for _, s := range resp.GetPolicies() {
					kind := s.GetKind()
					if s.GetError() != "" {
						kind = "error: " + s.GetError()
					}
					tb.add(policyID(s.GetNamespace(), s.GetName()), kind, itoa(s.GetRules()), itoa(s.GetSelectedEndpoints()), orDash(s.GetSource()))
				}
				return o.printer(cmd).print(resp, tb.write)
			})
		},
	}
}

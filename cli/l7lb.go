package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/weftnet/weft/api/agentapi"
)

func newL7LBCommand(o *options) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "l7lb",
		Short: "Apply, list and delete L7 load-balancing documents",
		Long: `L7LoadBalancing documents (weft.io/v1) balance one Service port's HTTP
requests by weight across Services, retry failed requests, rewrite paths
and eject failing backends (docs/l7lb.md). They are kept in the cluster's
store, so one apply through any node's agent is served by every node: each
node runs the balancer and sends its pods' connections to the Service's
ClusterIP and port there.`,
		Example: `  weft l7lb apply -f web-l7lb.yaml
  weft l7lb list
  weft l7lb delete shop/web`,
		Args: cobra.NoArgs,
	}
	cmd.AddCommand(newL7LBApplyCommand(o), newL7LBListCommand(o), newL7LBDeleteCommand(o))
	return cmd
}

// withL7LB is withAgent for the L7LoadBalancing service on the same socket.
func (o *options) withL7LB(ctx context.Context, fn func(ctx context.Context, t target, c agentapi.L7LoadBalancingClient) error) error {
	return withClient(ctx, o, agentapi.NewL7LoadBalancingClient, fn)
}

func newL7LBApplyCommand(o *options) *cobra.Command {
	var (
		file   string
		dryRun bool
	)
	cmd := &cobra.Command{
		Use:         "apply -f FILE",
		Annotations: structuredOutput,
		Short:       "Store the L7LoadBalancing documents of a YAML file (all of them, or none)",
		Long: `Read one or more L7LoadBalancing documents (separated by "---" lines) from
FILE, or from standard input with -f -, and store them. Every document is
checked first, and that no two documents (given or stored under another
name) select the same Service port; if any is refused nothing is stored,
and each problem is printed with the document and field it concerns.
Applying the same document again changes nothing ("unchanged").
A document without metadata.namespace is in namespace "default".`,
		Example: `  $ weft l7lb apply -f web-l7lb.yaml
  l7lb shop/web (service web port 80) created

  $ cat web-l7lb.yaml | weft l7lb apply -f - --dry-run
  l7lb shop/web (service web port 80) valid`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			data, err := readFileFlag(cmd, file, "apply L7LoadBalancing documents")
			if err != nil {
				return err
			}
			return o.withL7LB(cmd.Context(), func(ctx context.Context, t target, c agentapi.L7LoadBalancingClient) error {
				resp, err := c.Apply(ctx, &agentapi.ApplyL7LBRequest{Documents: data, Source: "cli", DryRun: dryRun})
				if s, ok := status.FromError(err); ok && s.Code() == codes.InvalidArgument {
					return fmt.Errorf("apply L7LoadBalancing documents: nothing was stored:\n%s", s.Message())
				}
				if err != nil {
					return t.rpcError("apply L7LoadBalancing documents", err)
				}
				return o.printer(cmd).print(resp, func(w io.Writer) error {
					for _, d := range resp.GetDocuments() {
						fmt.Fprintf(w, "l7lb %s/%s (service %s port %d) %s\n", d.GetNamespace(), d.GetName(), d.GetService(), d.GetPort(), d.GetResult())
					}
					return nil
				})
			})
		},
	}
	cmd.Flags().StringVarP(&file, "file", "f", "", "YAML file of L7LoadBalancing documents; - for standard input")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "check the documents, store nothing")
	return cmd
}

func newL7LBListCommand(o *options) *cobra.Command {
	return &cobra.Command{
		Use:         "list",
		Annotations: structuredOutput,
		Aliases:     []string{"ls"},
		Short:       "List the cluster's L7LoadBalancing documents and how this node serves them",
		Long: `List the cluster's L7LoadBalancing documents. BACKENDS are the weighted
target Services (service:port=weight); LISTENER is where the asked node's
balancer listens (its pods' connections to the Service's ClusterIP and port
are sent there); STATUS says why the node does not serve a document, or
"serving".`,
		Example: `  $ weft l7lb list
  NAME       SERVICE   PORT   BACKENDS                       LISTENER              SOURCE   STATUS
  shop/web   web       80     web-v1:80=90, web-v2:8080=10   192.168.7.2:40417     cli      serving`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return o.withL7LB(cmd.Context(), func(ctx context.Context, t target, c agentapi.L7LoadBalancingClient) error {
				resp, err := c.List(ctx, &agentapi.ListL7LBRequest{})
				if err != nil {
					return t.rpcError("list L7LoadBalancing documents", err)
				}
				tb := newTable("Name", "Service", "Port", "Backends", "Listener", "Source", "Status")
				for _, d := range resp.GetDocuments() {
					st := "serving"
					if d.GetError() != "" {
						st = d.GetError()
					}
					tb.add(d.GetNamespace()+"/"+d.GetName(), d.GetService(), itoa(d.GetPort()), strings.Join(d.GetBackends(), ", "),
						orDash(d.GetListener()), orDash(d.GetSource()), st)
				}
				return o.printer(cmd).print(resp, tb.write)
			})
		},
	}
}

func newL7LBDeleteCommand(o *options) *cobra.Command {
	return &cobra.Command{
		Use:         "delete [namespace/]name",
		Annotations: structuredOutput,
		Short:       "Remove an L7LoadBalancing document (every node sends the Service's connections to its backends again)",
		Long:        `Remove a document from the store. A missing document is not an error.`,
		Example: `  $ weft l7lb delete shop/web
  deleted l7lb shop/web`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ns, name, ok := strings.Cut(args[0], "/")
			if !ok {
				ns, name = "default", args[0]
			}
			if ns == "" || name == "" || strings.Contains(name, "/") {
				return fmt.Errorf("l7lb %q: name it [namespace/]name, e.g. shop/web (namespace default when left out)", args[0])
			}
			return o.withL7LB(cmd.Context(), func(ctx context.Context, t target, c agentapi.L7LoadBalancingClient) error {
				resp, err := c.Delete(ctx, &agentapi.DeleteL7LBRequest{Namespace: ns, Name: name})
				if s, ok := status.FromError(err); ok && s.Code() == codes.InvalidArgument {
					return fmt.Errorf("delete l7lb %s: %s", args[0], s.Message())
				}
				if err != nil {
					return t.rpcError("delete l7lb "+args[0], err)
				}
				return o.printer(cmd).print(resp, func(w io.Writer) error {
					if !resp.GetExisted() {
						_, err := fmt.Fprintf(w, "no l7lb %s/%s in the store: nothing deleted\n", ns, name)
						return err
					}
					_, err := fmt.Fprintf(w, "deleted l7lb %s/%s\n", ns, name)
					return err
				})
			})
		},
	}
}

// readFileFlag reads the file of -f FILE, or standard input for -f -; what
// ("apply L7LoadBalancing documents") names the command in errors.
func readFileFlag(cmd *cobra.Command, file, what string) ([]byte, error) {
	if file == "" {
		return nil, fmt.Errorf("%s: give the file with -f FILE (or -f - for standard input)", what)
	}
	var (
		data []byte
		err  error
	)
	if file == "-" {
		data, err = io.ReadAll(cmd.InOrStdin())
	} else {
		data, err = os.ReadFile(file)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: read %s: %w", what, file, err)
	}
	return data, nil
}

package cli

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/weftnet/weft/api/agentapi"
	pingress "github.com/weftnet/weft/proxy/ingress"
	"github.com/weftnet/weft/state/records"
)

func newIngressCommand(o *options) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "ingress",
		Aliases: []string{"ing"},
		Short:   "Publish HTTP(S) services through Ingresses served by every node",
		Long: `Ingresses are networking.k8s.io/v1 Ingress objects of class "weft": host
and path routing (Exact, Prefix) to Services, with TLS termination. They are
kept in the cluster's store, so one apply through any node's agent is served
by every node, on the node's address at ports 80 and 443 (the agent's
--ingress-http-port and --ingress-https-port). In Kubernetes mode
weft-apiserver --k8s-ingresses mirrors them from Kubernetes instead
(docs/ingress.md).`,
		Example: `  weft ingress apply -f foo-bar.yaml
  weft ingress apply -f tls.yaml --tls-secret demo-tls=demo.crt,demo.key
  weft ingress list
  weft ingress delete default/foo-bar`,
		Args: cobra.NoArgs,
	}
	cmd.AddCommand(newIngressApplyCommand(o), newIngressListCommand(o), newIngressDeleteCommand(o))
	return cmd
}

// withIngresses is withAgent for the Ingresses service on the same socket.
func (o *options) withIngresses(ctx context.Context, fn func(ctx context.Context, t target, c agentapi.IngressesClient) error) error {
	t, err := o.target()
	if err != nil {
		return err
	}
	conn, err := agentapi.DialConn(t.socket)
	if err != nil {
		return fmt.Errorf("reach weft-agent at %s: is the agent running? (%w)", t, err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	return fn(ctx, t, agentapi.NewIngressesClient(conn))
}

// parseTLSSecretFlag reads --tls-secret [namespace/]name=cert.pem,key.pem
// and the two files, refusing a certificate whose key does not match.
func parseTLSSecretFlag(v string) (*agentapi.TLSSecret, error) {
	const accepted = "accepted is [namespace/]name=CERT.pem,KEY.pem"
	id, files, ok := strings.Cut(v, "=")
	cert, key, ok2 := strings.Cut(files, ",")
	if !ok || !ok2 || cert == "" || key == "" {
		return nil, fmt.Errorf("--tls-secret %q: %s", v, accepted)
	}
	ns, name, hasNS := strings.Cut(id, "/")
	if !hasNS {
		ns, name = "", id
	}
	if err := records.ValidateObjectName(name); err != nil {
		return nil, fmt.Errorf("--tls-secret %q: name %q: %s (%v)", v, name, accepted, errors.Unwrap(err))
	}
	if hasNS {
		if err := records.ValidateNamespace(ns); err != nil {
			return nil, fmt.Errorf("--tls-secret %q: namespace %q: %s", v, ns, accepted)
		}
	}
	certPEM, err := os.ReadFile(cert)
	if err != nil {
		return nil, fmt.Errorf("--tls-secret %s: read the certificate: %w", id, err)
	}
	keyPEM, err := os.ReadFile(key)
	if err != nil {
		return nil, fmt.Errorf("--tls-secret %s: read the key: %w", id, err)
	}
	if _, err := tls.X509KeyPair(certPEM, keyPEM); err != nil {
		return nil, fmt.Errorf("--tls-secret %s: %s and %s: %v; accepted is a PEM certificate (chain) and its PEM private key", id, cert, key, err)
	}
	return &agentapi.TLSSecret{Namespace: ns, Name: name, CertPem: certPEM, KeyPem: keyPEM}, nil
}

func newIngressApplyCommand(o *options) *cobra.Command {
	var (
		file, namespace string
		secrets         []string
	)
	cmd := &cobra.Command{
		Use:         "apply -f FILE [--tls-secret NAME=CERT,KEY]... [-n NAMESPACE]",
		Annotations: structuredOutput,
		Short:       "Store the Ingresses of a YAML file (all of them, or none)",
		Long: `Read one or more networking.k8s.io/v1 Ingress documents (YAML or JSON,
separated by "---" lines) from FILE, or from standard input with -f -, and
store them. Every document is checked first: spec.ingressClassName must be
"weft"; pathType Exact, Prefix or ImplementationSpecific (served as Prefix);
backends are Services with a port number or name. If any document or
certificate is invalid, nothing is stored. Applying what is stored changes
nothing.

A spec.tls entry's secretName names a certificate: give it with
--tls-secret NAME=CERT.pem,KEY.pem (PEM files; the namespace is the
Ingress's unless written NAMESPACE/NAME). The certificate is stored with the
Ingress; in Kubernetes mode a kubernetes.io/tls Secret of that name is
mirrored instead.

A backend Service that does not exist is accepted: its requests get 503
until it does, and weft ingress list says so.`,
		Example: `  $ weft ingress apply -f foo-bar.yaml
  ingress default/foo-bar applied

  $ weft ingress apply -f tls.yaml --tls-secret demo-tls=demo.crt,demo.key
  secret default/demo-tls applied
  ingress default/tls-demo applied

  $ cat foo-bar.yaml
  apiVersion: networking.k8s.io/v1
  kind: Ingress
  metadata:
    name: foo-bar
  spec:
    ingressClassName: weft
    rules:
    - http:
        paths:
        - path: /foo
          pathType: Prefix
          backend:
            service:
              name: foo-app
              port:
                number: 5678`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if file == "" {
				return fmt.Errorf("apply ingresses: give the file with -f FILE (or -f - for standard input)")
			}
			data, err := readManifest(cmd, file) // cli/service_apply.go
			if err != nil {
				return err
			}
			// Checked here too, so that a bad file never reaches the agent.
			if _, err := pingress.Parse(data, namespace); err != nil {
				name := file
				if file == "-" {
					name = "standard input"
				}
				return fmt.Errorf("%s: %w; nothing was stored", name, err)
			}
			req := &agentapi.ApplyIngressesRequest{Documents: data, Source: "cli", Namespace: namespace}
			for _, s := range secrets {
				sec, err := parseTLSSecretFlag(s)
				if err != nil {
					return fmt.Errorf("%w; nothing was stored", err)
				}
				req.Secrets = append(req.Secrets, sec)
			}
			return o.withIngresses(cmd.Context(), func(ctx context.Context, t target, c agentapi.IngressesClient) error {
				resp, err := c.Apply(ctx, req)
				if s, ok := status.FromError(err); ok && (s.Code() == codes.InvalidArgument || s.Code() == codes.FailedPrecondition) {
					return fmt.Errorf("%s; nothing was stored", s.Message())
				}
				if err != nil {
					return t.rpcError("apply ingresses", err)
				}
				return o.printer(cmd).print(resp, func(w io.Writer) error {
					for _, a := range resp.GetIngresses() {
						verb := "applied"
						if !a.GetChanged() {
							verb = "unchanged"
						}
						fmt.Fprintf(w, "%s %s/%s %s\n", strings.ToLower(a.GetKind()), a.GetNamespace(), a.GetName(), verb)
					}
					return nil
				})
			})
		},
	}
	cmd.Flags().StringVarP(&file, "file", "f", "", "YAML file of Ingress documents; - for standard input")
	cmd.Flags().StringVarP(&namespace, "namespace", "n", "", `namespace of the documents that name none (default "default")`)
	cmd.Flags().StringArrayVar(&secrets, "tls-secret", nil, "[namespace/]name=CERT.pem,KEY.pem: the certificate a spec.tls secretName names (repeatable)")
	return cmd
}

func newIngressListCommand(o *options) *cobra.Command {
	return &cobra.Command{
		Use:         "list",
		Annotations: structuredOutput,
		Aliases:     []string{"ls"},
		Short:       "List the Ingresses: where they are served and their routes",
		Long: `List the cluster's Ingresses as the asked node serves them: the addresses
(every node's address with the HTTP port, and the HTTPS port for an Ingress
with spec.tls), one row per route with its backend Service and how many
ready backends it has (0: requests get 503, and why), the TLS hosts, and who
wrote it (cli, kubernetes). An Ingress that is not served shows its error.`,
		Example: `  $ weft ingress list
  NAME              ADDRESS                   HOST               PATH               BACKEND                                            READY                                                                SOURCE
  default/foo-bar   192.168.1.1:80            *                  /foo               default/foo-app:5678                               1                                                                    cli
                    192.168.1.2:80            *                  /bar               default/bar-app:5678                               1`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return o.withIngresses(cmd.Context(), func(ctx context.Context, t target, c agentapi.IngressesClient) error {
				resp, err := c.List(ctx, &agentapi.ListIngressesRequest{})
				if err != nil {
					return t.rpcError("list ingresses", err)
				}
				return o.printer(cmd).print(resp, ingressTable(resp).write)
			})
		},
	}
}

func ingressTable(resp *agentapi.ListIngressesResponse) *table {
	t := newTable("Name", "Address", "Host", "Path", "Backend", "Ready", "Source")
	for _, ing := range resp.GetIngresses() {
		id := ing.GetNamespace() + "/" + ing.GetName()
		if ing.GetError() != "" {
			t.add(id, "-", "-", "-", "error: "+ing.GetError(), "-", orDash(ing.GetSource()))
			continue
		}
		// The addresses (then the TLS hosts) run down beside the routes.
		addrs := slices.Clone(ing.GetAddresses())
		if len(ing.GetTlsHosts()) > 0 {
			addrs = append(addrs, "TLS: "+strings.Join(ing.GetTlsHosts(), " "))
		}
		routes := ing.GetRoutes()
		for i := range max(len(addrs), len(routes), 1) {
			cells := []string{"", "", "", "", "", "", ""}
			if i == 0 {
				cells[0], cells[6] = id, orDash(ing.GetSource())
			}
			if i < len(addrs) {
				cells[1] = addrs[i]
			}
			if i < len(routes) {
				r := routes[i]
				cells[2], cells[3], cells[4] = cmp.Or(r.GetHost(), "*"), r.GetPath(), r.GetBackend()
				if r.GetPathType() == "Exact" {
					cells[3] += " (exact)"
				}
				cells[5] = itoa(r.GetReadyBackends())
				if r.GetProblem() != "" {
					cells[5] += " (" + r.GetProblem() + ")"
				}
			}
			t.add(cells...)
		}
	}
	return t
}

func newIngressDeleteCommand(o *options) *cobra.Command {
	return &cobra.Command{
		Use:         "delete [NAMESPACE/]NAME",
		Annotations: structuredOutput,
		Aliases:     []string{"rm"},
		Short:       "Delete an Ingress (a missing one is not an error)",
		Long: `Delete an Ingress from the store; every node stops serving it. The
certificates stored with it by weft ingress apply --tls-secret go too,
unless another Ingress names them.`,
		Example: `  $ weft ingress delete foo-bar
  ingress default/foo-bar deleted`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ns, name, ok := strings.Cut(args[0], "/")
			if !ok {
				ns, name = "default", args[0]
			}
			if records.ValidateNamespace(ns) != nil || records.ValidateObjectName(name) != nil {
				return fmt.Errorf("ingress %q: name it [namespace/]name, e.g. default/foo-bar (lowercase DNS names)", args[0])
			}
			return o.withIngresses(cmd.Context(), func(ctx context.Context, t target, c agentapi.IngressesClient) error {
				resp, err := c.Delete(ctx, &agentapi.DeleteIngressRequest{Namespace: ns, Name: name})
				if err != nil {
					return t.rpcError("delete ingress "+ns+"/"+name, err)
				}
				return o.printer(cmd).print(resp, func(w io.Writer) error {
					if !resp.GetExisted() {
						_, err := fmt.Fprintf(w, "ingress %s/%s did not exist\n", ns, name)
						return err
					}
					_, err := fmt.Fprintf(w, "ingress %s/%s deleted\n", ns, name)
					return err
				})
			})
		},
	}
}

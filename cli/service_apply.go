package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/weftnet/weft/api/agentapi"
	"github.com/weftnet/weft/services"
)

func newServiceApplyCommand(o *options) *cobra.Command {
	var file string
	cmd := &cobra.Command{
		Use:         "apply -f FILE",
		Annotations: structuredOutput,
		Short:       "Create or update services from a Kubernetes Service manifest",
		Long: `Read Kubernetes Services (apiVersion v1, kind Service; YAML or JSON, several
documents separated by ---), the same files kubectl takes, and create or
update them through the node's agent. Every document is checked before
anything is written: one bad document changes nothing. Unknown fields,
ExternalName and headless services, named target ports and IPv6 are
refused with the reason. Annotations other than service.cilium.io/global,
shared and affinity are ignored.`,
		Example: `  weft service apply -f web-service.yaml
  kubectl get svc web -o yaml | weft service apply -f -`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if file == "" {
				return fmt.Errorf("apply: give the manifest with -f FILE (- for standard input)")
			}
			data, err := readManifest(cmd, file)
			if err != nil {
				return err
			}
			specs, err := services.ParseManifest(data)
			if err != nil {
				return fmt.Errorf("read %s: %w", file, err)
			}
			req := &agentapi.ApplyServicesRequest{Mode: agentapi.ApplyMode_APPLY_MODE_CREATE_OR_UPDATE}
			for _, s := range specs {
				req.Services = append(req.Services, services.ToAPI(s, ""))
			}
			return o.withServices(cmd.Context(), func(ctx context.Context, t target, c agentapi.ServicesClient) error {
				resp, err := c.Apply(ctx, req)
				if err != nil {
					return t.rpcError("apply "+file, err)
				}
				return o.printer(cmd).print(resp, func(w io.Writer) error { return writeServiceSpecs(w, resp.GetServices()) })
			})
		},
	}
	cmd.Flags().StringVarP(&file, "filename", "f", "", "manifest file, - for standard input")
	return cmd
}

func readManifest(cmd *cobra.Command, file string) ([]byte, error) {
	var r io.Reader = cmd.InOrStdin()
	if file != "-" {
		f, err := os.Open(file)
		if err != nil {
			return nil, fmt.Errorf("read manifest: %w", err)
		}
		defer f.Close()
		r = f
	}
	data, err := io.ReadAll(io.LimitReader(r, services.MaxManifest+1))
	if err != nil {
		return nil, fmt.Errorf("read manifest %s: %w", file, err)
	}
	return data, nil
}

func newServiceDeleteCommand(o *options) *cobra.Command {
	return &cobra.Command{
		Use:         "delete [NAMESPACE/]NAME",
		Annotations: structuredOutput,
		Aliases:     []string{"rm"},
		Short:       "Delete a service (a missing one is not an error)",
		Example: `  weft service delete web
  weft service delete shop/web`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ns, name, err := parseServiceName(args[0])
			if err != nil {
				return err
			}
			return o.withServices(cmd.Context(), func(ctx context.Context, t target, c agentapi.ServicesClient) error {
				resp, err := c.Delete(ctx, &agentapi.DeleteServiceRequest{Namespace: ns, Name: name})
				if err != nil {
					return t.rpcError("delete service "+ns+"/"+name, err)
				}
				return o.printer(cmd).print(resp, func(w io.Writer) error {
					if !resp.GetExisted() {
						_, err := fmt.Fprintf(w, "service %s/%s did not exist\n", ns, name)
						return err
					}
					_, err := fmt.Fprintf(w, "service %s/%s deleted\n", ns, name)
					return err
				})
			})
		},
	}
}

func newServiceGetCommand(o *options) *cobra.Command {
	return &cobra.Command{
		Use:         "get [NAMESPACE/]NAME",
		Annotations: structuredOutput,
		Short:       "Show a service's definition",
		Example: `  weft service get web
  weft service get shop/web -o yaml`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ns, name, err := parseServiceName(args[0])
			if err != nil {
				return err
			}
			return o.withServices(cmd.Context(), func(ctx context.Context, t target, c agentapi.ServicesClient) error {
				s, err := c.Get(ctx, &agentapi.GetServiceRequest{Namespace: ns, Name: name})
				if err != nil {
					return t.rpcError("get service "+ns+"/"+name, err)
				}
				return o.printer(cmd).print(s, func(w io.Writer) error { return writeServiceSpecs(w, []*agentapi.ServiceSpec{s}) })
			})
		},
	}
}

// writeServiceSpecs prints definitions as key/value blocks.
func writeServiceSpecs(w io.Writer, specs []*agentapi.ServiceSpec) error {
	for i, s := range specs {
		if i > 0 {
			fmt.Fprintln(w)
		}
		f := &fields{}
		f.add("Service", s.GetNamespace()+"/"+s.GetName())
		f.add("Type", s.GetType())
		f.add("ClusterIP", orDash(s.GetClusterIp()))
		var ports []string
		for _, p := range s.GetPorts() {
			ports = append(ports, formatPort(p))
		}
		f.add("Ports", strings.Join(ports, "\n"))
		f.add("External IPs", orDash(strings.Join(s.GetExternalIps(), ", ")))
		if len(s.GetLoadBalancerIps()) > 0 {
			f.add("LB IPs", strings.Join(s.GetLoadBalancerIps(), ", "))
		}
		if len(s.GetSelector()) > 0 {
			f.add("Selector", joinMap(s.GetSelector()))
		} else {
			f.add("Backends", orDash(strings.Join(s.GetBackends(), "\n")))
		}
		affinity := orDash(s.GetSessionAffinity())
		if s.GetAffinityTimeoutSeconds() > 0 {
			affinity += fmt.Sprintf(" (%ds)", s.GetAffinityTimeoutSeconds())
		}
		f.add("Session affinity", affinity)
		if len(s.GetAnnotations()) > 0 {
			f.add("Annotations", joinMap(s.GetAnnotations()))
		}
		if err := f.write(w); err != nil {
			return err
		}
	}
	return nil
}

func joinMap(m map[string]string) string {
	out := make([]string, 0, len(m))
	for k, v := range m {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return strings.Join(out, "\n")
}

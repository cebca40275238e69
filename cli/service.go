package cli

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/weftnet/weft/api/agentapi"
)

func newServiceCommand(o *options) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "service",
		Aliases: []string{"svc"},
		Short:   "Define and show load-balanced services",
		Example: `  weft service list
  weft service create web --port 80:8080/TCP --selector app=web
  weft service apply -f web-service.yaml
  weft service get web -o yaml
  weft service delete web`,
		Args: cobra.NoArgs,
	}
	cmd.AddCommand(serviceWriteCommands(o)...) // cli/service_write.go
	cmd.AddCommand(&cobra.Command{
		Use:         "list",
		Annotations: structuredOutput,
		Aliases:     []string{"ls"},
		Short:       "List services: frontends and their numbered backends",
		Long: `List the services the node load-balances, in the layout of
"cilium service list": one row per frontend (a service with a ClusterIP and
a NodePort has two rows under the same ID), its type, who wrote it (cli,
kubernetes for the apiserver's Kubernetes source, hostport), and its backends
numbered one per line, "(active)" when ready. -o json adds names,
namespaces, annotations, session affinity and the node and cluster of each
backend.`,
		Example: `  $ weft service list
  ID   FRONTEND                SERVICE TYPE   SOURCE       BACKEND
  1    10.96.0.10:80/TCP       ClusterIP      kubernetes   1 => 10.100.1.5:8080 (active)
                                                           2 => 10.100.2.7:8080 (active)
  1    192.168.7.2:30080/TCP   NodePort       kubernetes   1 => 10.100.1.5:8080 (active)
                                                           2 => 10.100.2.7:8080 (active)`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return o.withAgent(cmd.Context(), func(ctx context.Context, t target, a agentapi.AgentClient) error {
				resp, err := a.ListServices(ctx, &agentapi.ListServicesRequest{})
				if err != nil {
					return t.rpcError("list services", err)
				}
				return o.printer(cmd).print(resp, serviceTable(resp).write)
			})
		},
	})
	return cmd
}

func serviceTable(resp *agentapi.ListServicesResponse) *table {
	t := newTable("ID", "Frontend", "Service Type", "Source", "Backend")
	for _, svc := range resp.GetServices() {
		backends := numberedBackends(svc.GetBackends())
		fes := svc.GetFrontends()
		if len(fes) == 0 {
			t.add(itoa(svc.GetId()), "-", "-", orDash(svc.GetSource()), backends)
			continue
		}
		for _, fe := range fes {
			t.add(itoa(svc.GetId()), fe.GetAddress(), orDash(fe.GetType()), orDash(svc.GetSource()), backends)
		}
	}
	return t
}

// numberedBackends is the BACKEND cell: "1 => 10.0.0.1:80 (active)", one
// backend per line; a remote pod known by its global address also shows
// its pod address: "2 => 242.2.0.5:80 (active; pod 10.100.0.5:80)".
func numberedBackends(bes []*agentapi.Backend) string {
	lines := make([]string, len(bes))
	for i, be := range bes {
		state := "active"
		if !be.GetReady() {
			state = "not ready"
		}
		if pod := be.GetPodAddress(); pod != "" {
			state += "; pod " + pod // a remote pod reached by its global address
		}
		lines[i] = fmt.Sprintf("%d => %s (%s)", i+1, be.GetAddress(), state)
	}
	return strings.Join(lines, "\n")
}

package cli

import (
	"context"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/weftnet/weft/api/agentapi"
	"github.com/weftnet/weft/services"
)

// serviceWriteCommands are the subcommands of `weft service` that define
// services: create, update, apply, delete and get. They go through the
// node's agent, which validates, allocates and writes the store.
func serviceWriteCommands(o *options) []*cobra.Command {
	return []*cobra.Command{
		newServiceDefineCommand(o, "create", agentapi.ApplyMode_APPLY_MODE_CREATE),
		newServiceDefineCommand(o, "update", agentapi.ApplyMode_APPLY_MODE_UPDATE),
		newServiceApplyCommand(o), newServiceDeleteCommand(o), newServiceGetCommand(o),
	}
}

// withServices is withAgent for the Services service on the same socket.
func (o *options) withServices(ctx context.Context, fn func(ctx context.Context, t target, s agentapi.ServicesClient) error) error {
	return withClient(ctx, o, agentapi.NewServicesClient, fn)
}

// parseServiceName reads [namespace/]name.
func parseServiceName(arg string) (ns, name string, err error) {
	ns, name, ok := strings.Cut(arg, "/")
	if !ok {
		ns, name = "default", arg
	}
	if name == "" || ns == "" || strings.Contains(name, "/") {
		return "", "", fmt.Errorf("service %q: name it [namespace/]name, e.g. default/web", arg)
	}
	return ns, name, nil
}

func newServiceDefineCommand(o *options, verb string, mode agentapi.ApplyMode) *cobra.Command {
	var f services.Flags
	cmd := &cobra.Command{
		Use:         verb + " [NAMESPACE/]NAME",
		Annotations: structuredOutput,
		Short:       strings.ToUpper(verb[:1]) + verb[1:] + " a service from flags",
		Long: `Define a service through the node's agent, which checks every field,
allocates a ClusterIP from its --service-cidr and NodePorts from 30000-32767
(for NodePort and LoadBalancer services), and writes it to the cluster's
store; every node then load-balances it. Backends are the pods matching
--selector anywhere in the cluster, or the --backend addresses as given.
Ports are [name=]port[:targetPort[:nodePort]][/TCP|UDP]; several ports need
names. update changes only the flags given and keeps the allocations.`,
		Example: `  weft service ` + verb + ` web --port 80:8080/TCP --selector app=web
  weft service ` + verb + ` shop/web --type NodePort --port http=80:8080 --selector app=web,tier=front
  weft service ` + verb + ` db --port 5432 --backend 192.168.7.20:5432 --backend 192.168.7.21:5432
  weft service ` + verb + ` web --type LoadBalancer --port 443 --lb-ip 192.0.2.10 --selector app=web \
      --session-affinity ClientIP --affinity-timeout 600 --annotation service.cilium.io/global=true`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ns, name, err := parseServiceName(args[0])
			if err != nil {
				return err
			}
			return o.withServices(cmd.Context(), func(ctx context.Context, t target, c agentapi.ServicesClient) error {
				given := f
				given.Namespace, given.Name = ns, name
				if mode == agentapi.ApplyMode_APPLY_MODE_UPDATE {
					old, err := c.Get(ctx, &agentapi.GetServiceRequest{Namespace: ns, Name: name})
					if err != nil {
						return t.rpcError("update service "+ns+"/"+name, err)
					}
					if given, err = mergeFlags(flagsOf(old), f, cmd); err != nil {
						return err
					}
					for _, c := range annotationChanges(old.GetAnnotations(), given.Annotations) {
						fmt.Fprintln(cmd.ErrOrStderr(), c)
					}
				}
				spec, err := services.ParseFlags(given)
				if err != nil {
					return err
				}
				resp, err := c.Apply(ctx, &agentapi.ApplyServicesRequest{Mode: mode, Services: []*agentapi.ServiceSpec{services.ToAPI(spec, "")}})
				if err != nil {
					return t.rpcError(verb+" service "+ns+"/"+name, err)
				}
				return o.printer(cmd).print(resp, func(w io.Writer) error { return writeServiceSpecs(w, resp.GetServices()) })
			})
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&f.Type, "type", "", "ClusterIP (default), NodePort or LoadBalancer")
	fs.StringArrayVar(&f.Ports, "port", nil, "frontend port [name=]port[:targetPort[:nodePort]][/TCP|UDP], repeatable")
	fs.StringVar(&f.ClusterIP, "cluster-ip", "", "cluster IP inside the agent's --service-cidr (default: allocated)")
	fs.StringArrayVar(&f.ExternalIPs, "external-ip", nil, "external IP served on every node, repeatable")
	fs.StringArrayVar(&f.LoadBalancerIPs, "lb-ip", nil, "load-balancer IP (type LoadBalancer), repeatable")
	fs.StringArrayVar(&f.Selector, "selector", nil, "pod labels k=v[,k2=v2] selecting the backends")
	fs.StringArrayVar(&f.Backends, "backend", nil, "explicit backend ip:port instead of a selector, repeatable")
	fs.StringVar(&f.SessionAffinity, "session-affinity", "", "None (default) or ClientIP")
	fs.Uint32Var(&f.AffinityTimeout, "affinity-timeout", 0, "ClientIP affinity timeout in seconds (default 10800)")
	fs.StringArrayVar(&f.Annotations, "annotation", nil, "service.cilium.io/global|shared|affinity=value, repeatable")
	return cmd
}

// flagsOf renders a stored service as the flags that would define it.
func flagsOf(s *agentapi.ServiceSpec) services.Flags {
	f := services.Flags{
		Namespace: s.GetNamespace(), Name: s.GetName(), Type: s.GetType(), ClusterIP: s.GetClusterIp(),
		ExternalIPs: s.GetExternalIps(), LoadBalancerIPs: s.GetLoadBalancerIps(), Backends: s.GetBackends(),
		SessionAffinity: s.GetSessionAffinity(), AffinityTimeout: s.GetAffinityTimeoutSeconds(),
	}
	for _, p := range s.GetPorts() {
		f.Ports = append(f.Ports, formatPort(p))
	}
	for k, v := range s.GetSelector() {
		f.Selector = append(f.Selector, k+"="+v)
	}
	for k, v := range s.GetAnnotations() {
		f.Annotations = append(f.Annotations, k+"="+v)
	}
	return f
}

// mergeFlags overrides old with the flags given on the command line.
// Annotations are merged key by key: k=v sets one, k- removes one.
func mergeFlags(old, given services.Flags, cmd *cobra.Command) (services.Flags, error) {
	ch := cmd.Flags().Changed
	set := func(flag string, dst *[]string, v []string) {
		if ch(flag) {
			*dst = v
		}
	}
	if ch("type") {
		old.Type = given.Type
	}
	if ch("cluster-ip") {
		old.ClusterIP = given.ClusterIP
	}
	set("port", &old.Ports, given.Ports)
	set("external-ip", &old.ExternalIPs, given.ExternalIPs)
	set("lb-ip", &old.LoadBalancerIPs, given.LoadBalancerIPs)
	if ch("annotation") {
		merged, err := mergeAnnotations(old.Annotations, given.Annotations)
		if err != nil {
			return old, err
		}
		old.Annotations = merged
	}
	if ch("selector") {
		old.Selector, old.Backends = given.Selector, nil
	}
	if ch("backend") {
		old.Backends, old.Selector = given.Backends, nil
	}
	if ch("session-affinity") {
		old.SessionAffinity, old.AffinityTimeout = given.SessionAffinity, 0
	}
	if ch("affinity-timeout") {
		old.AffinityTimeout = given.AffinityTimeout
	}
	return old, nil
}

// mergeAnnotations applies edits (k=v sets k, k- removes it) to the k=v
// pairs of old, keeping every key not named; the result is sorted.
func mergeAnnotations(old, edits []string) ([]string, error) {
	m := map[string]string{}
	for _, kv := range old {
		k, v, _ := strings.Cut(kv, "=")
		m[k] = v
	}
	for _, e := range edits {
		if k, ok := strings.CutSuffix(e, "-"); ok && !strings.Contains(e, "=") {
			if _, had := m[k]; !had {
				return nil, fmt.Errorf("--annotation %s: the service has no annotation %q to remove", e, k)
			}
			delete(m, k)
			continue
		}
		k, v, ok := strings.Cut(e, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("--annotation %q: give key=value to set one, or key- to remove one", e)
		}
		m[k] = v
	}
	out := make([]string, 0, len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		out = append(out, k+"="+m[k])
	}
	return out, nil
}

// annotationChanges says, one line per key, how an update changes the
// annotations: set, changed or removed.
func annotationChanges(old map[string]string, merged []string) []string {
	now := map[string]string{}
	for _, kv := range merged {
		k, v, _ := strings.Cut(kv, "=")
		now[k] = v
	}
	var out []string
	for _, k := range slices.Sorted(maps.Keys(now)) {
		switch was, had := old[k]; {
		case !had:
			out = append(out, fmt.Sprintf("annotation %s: set to %q", k, now[k]))
		case was != now[k]:
			out = append(out, fmt.Sprintf("annotation %s: %q -> %q", k, was, now[k]))
		}
	}
	for _, k := range slices.Sorted(maps.Keys(old)) {
		if _, ok := now[k]; !ok {
			out = append(out, fmt.Sprintf("annotation %s: removed (was %q)", k, old[k]))
		}
	}
	return out
}

func formatPort(p *agentapi.ServicePortSpec) string {
	s := fmt.Sprintf("%d:%d", p.GetPort(), p.GetTargetPort())
	if p.GetNodePort() != 0 {
		s += fmt.Sprintf(":%d", p.GetNodePort())
	}
	if p.GetName() != "" {
		s = p.GetName() + "=" + s
	}
	return s + "/" + p.GetProtocol()
}

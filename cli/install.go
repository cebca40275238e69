package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/weftnet/weft/state/records"
)

// Option changes how NewRootCommand builds the tree.
type Option func(*options)

// WithChart gives `weft install` the Helm chart to render (cmd/weft passes
// the chart embedded by package deploy).
func WithChart(chart fs.FS) Option {
	return func(o *options) { o.chart = chart }
}

// installConfig is everything `weft install` acts on.
type installConfig struct {
	kube kubeFlags

	clusterName, routing, kvstore string
	clusterID                     uint32
	endpoints                     []string
	set, valueFiles               []string
	chartDir                      string
	changed                       func(flag string) bool

	dryRun, force, wait bool
	waitTimeout         time.Duration
	pollInterval        time.Duration
}

func (c *installConfig) registerFlags(fs *pflag.FlagSet) {
	c.kube.register(fs)
	fs.StringVar(&c.clusterName, "cluster-name", "c1", "the cluster's name in the mesh: a lowercase DNS label of at most 32 characters (value cluster.name)")
	fs.Uint32Var(&c.clusterID, "cluster-id", 1, "the cluster's id in the mesh, 1-255, unique among connected clusters (value cluster.id)")
	fs.StringVar(&c.routing, "routing", records.RoutingTunnel, "how pod traffic crosses nodes: tunnel (VXLAN) or native (value routingMode)")
	fs.StringVar(&c.kvstore, "kvstore", "etcd", "the store the agents share: etcd, consul, or embedded (the apiserver's own etcd, on the node apiserver.nodeSelector picks; value store.kind)")
	fs.StringSliceVar(&c.endpoints, "kvstore-endpoints", nil, "store URLs every node reaches, e.g. https://10.0.0.5:2379 (value store.endpoints; required)")
	fs.StringArrayVar(&c.set, "set", nil, "a chart value, key=value as in helm --set (repeatable; wins over the flags above)")
	fs.StringArrayVarP(&c.valueFiles, "values", "f", nil, "a YAML file of chart values (repeatable; the flags above and --set win over it)")
	fs.StringVar(&c.chartDir, "chart", "", "render this chart directory instead of the chart built into weft")
	fs.BoolVar(&c.dryRun, "dry-run", false, "print the manifests that would be applied and touch no cluster")
	fs.BoolVar(&c.force, "force", false, "install even when another network plugin runs in the cluster")
	fs.BoolVar(&c.wait, "wait", true, "wait until the agent DaemonSet and the apiserver Deployment are ready")
	fs.DurationVar(&c.waitTimeout, "wait-timeout", 5*time.Minute, "how long to wait for readiness")
}

func (f *kubeFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&f.kubeconfig, "kubeconfig", "", "kubeconfig file (default: KUBECONFIG, else ~/.kube/config)")
	fs.StringVar(&f.context, "context", "", "kubeconfig context (default: the current context)")
	fs.StringVarP(&f.namespace, "namespace", "n", "weft-system", "namespace Weft's objects live in")
}

// validate refuses bad flags before anything is rendered or applied,
// naming the flag, the value and what is accepted. Values given with
// --set or -f are checked by the chart's values.schema.json.
func (c *installConfig) validate() error {
	if err := records.ValidateClusterName(c.clusterName); err != nil {
		return fmt.Errorf("--cluster-name: %w", err)
	}
	if err := records.ValidateClusterID(c.clusterID); err != nil {
		return fmt.Errorf("--cluster-id: %w", err)
	}
	if !slices.Contains([]string{records.RoutingTunnel, records.RoutingNative}, c.routing) {
		return fmt.Errorf("--routing %q: want %s or %s", c.routing, records.RoutingTunnel, records.RoutingNative)
	}
	if c.kvstore != "etcd" && c.kvstore != "consul" && c.kvstore != "embedded" {
		return fmt.Errorf("--kvstore %q: want etcd, consul or embedded (the apiserver's own etcd)", c.kvstore)
	}
	for _, e := range c.endpoints {
		u, err := url.Parse(e)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") {
			return fmt.Errorf("--kvstore-endpoints %q: want a URL such as https://10.0.0.5:2379 (http or https, host and port, no path)", e)
		}
	}
	if c.waitTimeout <= 0 {
		return fmt.Errorf("--wait-timeout %s: want a positive duration such as 5m", c.waitTimeout)
	}
	return nil
}

// values maps the dedicated flags to chart values; a flag not given
// leaves the chart's default (or a -f file's value) alone.
func (c *installConfig) values() chartValues {
	flags := map[string]any{}
	for flag, v := range map[string]struct {
		key string
		val any
	}{
		"cluster-name":      {"cluster.name", c.clusterName},
		"cluster-id":        {"cluster.id", int64(c.clusterID)},
		"routing":           {"routingMode", c.routing},
		"kvstore":           {"store.kind", c.kvstore},
		"kvstore-endpoints": {"store.endpoints", toAny(c.endpoints)},
	} {
		if c.changed(flag) {
			flags[v.key] = v.val
		}
	}
	return chartValues{files: c.valueFiles, flags: flags, set: c.set}
}

func toAny(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

func newInstallCommand(o *options) *cobra.Command {
	c := &installConfig{pollInterval: 2 * time.Second}
	cmd := &cobra.Command{
		Use:   "install",
		Short: "Install Weft on a Kubernetes cluster (render the Helm chart and apply it)",
		Long: `Render Weft's Helm chart (the one built into this weft, or --chart) with the
flags and --set values, exactly as "helm template" would, check the values
against the chart's schema, and apply the objects with server-side apply
(field manager "weft"): the chart's CRDs first, waited for until served,
then the rest. Then wait until the agent DaemonSet and the apiserver
Deployment are ready, printing progress on stderr; when they are not
ready in time, say which pod is failing and why.

Running it again converges: unchanged objects stay unchanged, objects the
chart no longer renders are deleted. What was applied is recorded in the
ConfigMap weft-install, which "weft uninstall" reads.

The cluster is chosen as kubectl does: --kubeconfig, else KUBECONFIG,
else ~/.kube/config, and --context, else the current context. Weft refuses
to install next to another network plugin's DaemonSet (Cilium, Calico,
flannel, ...) unless --force is given.`,
		Example: `  weft install --cluster-name west --cluster-id 1 --kvstore-endpoints https://10.0.0.5:2379 --set store.tlsSecret=weft-etcd-client
  weft install --kvstore consul --kvstore-endpoints http://10.0.0.5:8500 --routing native --dry-run
  weft install --context prod --kvstore-endpoints https://10.0.0.5:2379 --wait-timeout 10m`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c.changed = func(name string) bool { return cmd.Flags().Changed(name) }
			chart := o.chart
			if c.chartDir != "" {
				if _, err := os.Stat(c.chartDir); err != nil {
					return fmt.Errorf("--chart: %w", err)
				}
				chart = os.DirFS(c.chartDir)
			}
			if chart == nil {
				return errors.New("this weft was built without the Helm chart: give --chart deploy/helm/weft")
			}
			return runInstall(cmd.Context(), c, chart, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	c.registerFlags(cmd.Flags())
	return cmd
}

// runInstall validates, renders, then (unless a dry run) applies and waits.
func runInstall(ctx context.Context, c *installConfig, chart fs.FS, out, progress io.Writer) error {
	if err := c.validate(); err != nil {
		return err
	}
	manifest, notes, err := renderChart(chart, c.kube.namespace, c.values())
	if err != nil {
		msg := strings.TrimSpace(err.Error())
		if strings.Contains(msg, "/store/endpoints") {
			msg += "\n(give the store's URLs with --kvstore-endpoints, e.g. https://10.0.0.5:2379)"
		}
		return fmt.Errorf("%s\nnothing was applied", msg)
	}
	if c.dryRun {
		_, err := io.WriteString(out, manifest)
		return err
	}
	objs, err := decodeObjects(manifest)
	if err != nil {
		return err
	}
	k, err := c.kube.connect()
	if err != nil {
		return err
	}
	if !c.force {
		found, err := otherCNIs(ctx, k.client)
		if err != nil {
			return err
		}
		if len(found) > 0 {
			return otherCNIError(found)
		}
	}
	fmt.Fprintf(progress, "installing Weft into %s, namespace %s\n", k.host, c.kube.namespace)
	if err := k.install(ctx, c, objs, out, progress); err != nil {
		return err
	}
	if notes != "" {
		fmt.Fprintf(out, "\n%s\n", notes)
	}
	return nil
}

func (k *kube) install(ctx context.Context, c *installConfig, objs []*unstructured.Unstructured, out, progress io.Writer) error {
	ns := c.kube.namespace
	if created, err := k.ensureNamespace(ctx, ns); err != nil {
		return err
	} else if created {
		fmt.Fprintf(out, "namespace/%s created\n", ns)
	}
	old, _, err := k.readInventory(ctx, ns)
	if err != nil {
		return err
	}
	var applied []ref
	var workloads []workload
	// CRDs first, each served before anything that may use it.
	for _, crds := range []bool{true, false} {
		for _, u := range objs {
			if (u.GetKind() == crdKind) != crds {
				continue
			}
			what, err := k.apply(ctx, u)
			if err != nil {
				return err
			}
			r := refOf(u)
			applied = append(applied, r)
			fmt.Fprintf(out, "%s %s\n", r, what)
			if crds {
				if err := k.waitEstablished(ctx, u.GetName(), time.Minute); err != nil {
					return err
				}
			}
			if r.Kind == "DaemonSet" || r.Kind == "Deployment" {
				workloads = append(workloads, workload{kind: r.Kind, namespace: r.Namespace, name: r.Name})
			}
		}
		if crds {
			k.mapper.Reset() // the new kinds are served now
		}
	}
	for _, r := range old {
		if slices.Contains(applied, r) || r.Kind == crdKind {
			continue
		}
		gone, err := k.remove(ctx, r)
		if err != nil {
			return err
		}
		if gone {
			fmt.Fprintf(out, "%s deleted (the chart no longer renders it)\n", r)
		}
	}
	if err := k.writeInventory(ctx, ns, applied); err != nil {
		return err
	}
	if slices.Contains(workloads, workload{kind: "Deployment", namespace: ns, name: meshDeployment}) {
		if err := installMeshSecret(ctx, c.kube, out); err != nil {
			return fmt.Errorf("weft is installed but its apiserver has no clustermesh Secret: %w", err)
		}
	}
	if !c.wait || len(workloads) == 0 {
		return nil
	}
	if err := waitReady(ctx, k.client, workloads, c.waitTimeout, c.pollInterval, progress); err != nil {
		return fmt.Errorf("weft is installed but %w", err)
	}
	fmt.Fprintln(out, "Weft is ready")
	return nil
}

package cli

import (
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/weftnet/weft/clustermesh"
	"github.com/weftnet/weft/clustermesh/apiserver"
	"github.com/weftnet/weft/testenv"
)

// defaultMeshRoot holds one clustermesh directory per cluster on a
// standalone host.
const defaultMeshRoot = "/var/lib/weft/clustermesh"

// meshOptions are the flags every clustermesh subcommand shares.
type meshOptions struct {
	o   *options
	dir string
	// kube is the cluster's kube context (--kubeconfig, --context,
	// --namespace) when Weft was installed there with its chart.
	kube        kubeFlags
	waitTimeout time.Duration
	// pinned are targets found through kube contexts, by cluster name.
	pinned map[string]clustermesh.Target
}

// root is --dir, else the clustermesh directory of the testenv
// environment given with --name, else /var/lib/weft/clustermesh.
func (m *meshOptions) root() string {
	if m.dir != "" {
		return m.dir
	}
	if m.o.name != "" {
		return filepath.Join(envDir(m.o.testenvRoot, m.o.name), "clustermesh")
	}
	return defaultMeshRoot
}

// env is the testenv environment of --name, nil without --name.
func (m *meshOptions) env(cmd *cobra.Command) (*testenv.Env, error) {
	if m.o.name == "" || m.dir != "" {
		return nil, nil
	}
	return testenv.Load(m.o.name, cmd.OutOrStdout(), cliLogger(cmd))
}

func (m *meshOptions) target(name string) (clustermesh.Target, error) {
	if t, ok := m.pinned[name]; ok {
		return t, nil
	}
	return clustermesh.LoadTarget(m.root(), name)
}

func step(cmd *cobra.Command) func(string, ...any) {
	return func(format string, args ...any) { fmt.Fprintf(cmd.OutOrStdout(), "• "+format+"\n", args...) }
}

func newClusterMeshCommand(o *options) *cobra.Command {
	m := &meshOptions{o: o}
	cmd := &cobra.Command{
		Use:   "clustermesh",
		Short: "Connect clusters: enable, connect, disconnect, status",
		Long: `clustermesh connects Weft clusters so that pods reach pods across them.

Each cluster runs a weft-apiserver that serves its state over mutual TLS.
"enable" creates a cluster's CA, certificates and apiserver configuration in
its clustermesh directory (<dir>/<cluster>/); "connect" makes two clusters
read each other's state with read-only certificates; "disconnect" undoes it;
"status" shows each cluster's remotes and, per node, which are connected
and synced.

With --name, the clusters are those of a testenv environment: their
directories are in the environment's state directory, and "enable" also
starts the cluster's apiserver next to its store.

With --context (or --kubeconfig), the cluster is the one Weft was installed
on with its Helm chart ("weft install" or helm): the clustermesh directory
is the Secret weft-clustermesh its apiserver mounts, the cluster's name and
id come from the install, and remote clusters (and this CLI) reach its
apiserver at the addresses of the Service weft-clustermesh. "connect" then
takes the other cluster with --destination-context.`,
		Example: `  # Two clusters of testenv environment "mesh", connected and checked
  weft --name mesh clustermesh enable c1
  weft --name mesh clustermesh enable c2
  weft --name mesh clustermesh connect c1 c2
  weft --name mesh clustermesh status

  # Every pair of three clusters
  weft clustermesh connect --mesh c1 c2 c3

  # Two Kubernetes clusters, by kube context
  weft clustermesh enable --context east
  weft clustermesh enable --context west
  weft clustermesh connect --context east --destination-context west
  weft clustermesh status --context east`,
	}
	cmd.PersistentFlags().StringVar(&m.dir, "dir", "", "directory holding one clustermesh directory per cluster (default: the testenv environment's with --name, else "+defaultMeshRoot+")")
	m.kube.register(cmd.PersistentFlags())
	cmd.PersistentFlags().DurationVar(&m.waitTimeout, "wait-timeout", 5*time.Minute, "with --context: how long to wait for the apiserver's Service address and readiness")
	cmd.AddCommand(newMeshEnableCommand(m), newMeshConnectCommand(m), newMeshDisconnectCommand(m), newMeshStatusCommand(m), newMeshCopyDirCommand())
	return cmd
}

func newMeshEnableCommand(m *meshOptions) *cobra.Command {
	cfg := apiserver.DefaultConfig()
	var hosts []string
	cmd := &cobra.Command{
		Use:   "enable <cluster>",
		Short: "Create a cluster's CA, certificates and apiserver configuration",
		Long: `Create (or complete) the clustermesh directory of a cluster: a CA (ECDSA
P-256), the apiserver's serving certificate, client certificates for the
apiserver itself (root), the CLI (admin) and local agents (agent), and
apiserver.json for "weft-apiserver --config". Idempotent: an existing CA is
kept; a directory of another cluster is refused.

With --name (a testenv environment) everything is taken from the
environment, and the cluster's weft-apiserver is started too.

With --context, the cluster is the one Weft was installed on there: the
directory is created as the Secret weft-clustermesh (an existing CA is
kept), with a serving certificate for the addresses of the Service
weft-clustermesh (a LoadBalancer's address is waited for); the apiserver
is restarted when the Secret changed, and enable waits until it answers.`,
		Example: `  weft --name mesh clustermesh enable c1
  weft clustermesh enable --context east
  weft clustermesh enable west --cluster-id 7 --pod-cidr-pool 10.107.0.0/16 \
      --store-listen https://10.0.0.5:2381 --admin-listen 10.0.0.5:2383 \
      --kvstore-endpoints http://10.0.0.5:2379
  # A cluster sharing its pod CIDR with others: global addresses
  weft clustermesh enable east --cluster-id 8 --pod-cidr-pool 10.100.0.0/16 --global-cidr 242.8.0.0/16 \
      --store-listen https://10.0.0.6:2381 --kvstore-endpoints http://10.0.0.6:2379`,
		Args: cobra.RangeArgs(0, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if m.kubeMode(cmd) {
				return m.enableKube(cmd, args, hosts)
			}
			if len(args) != 1 {
				return fmt.Errorf("enable: give the cluster's name (or --context for a cluster Weft was installed on), got %d arguments", len(args))
			}
			e, err := m.env(cmd)
			if err != nil {
				return err
			}
			if e != nil {
				return e.EnableMesh(cmd.Context(), args[0])
			}
			cfg.ClusterName = args[0]
			cfg.Dir = filepath.Join(m.root(), args[0])
			if !cmd.Flags().Changed("admin-listen") {
				cfg.AdminListen = append(cfg.AdminListen, "unix://"+filepath.Join(cfg.Dir, clustermesh.AdminSocket))
			}
			if err := cfg.Validate(); err != nil {
				return fmt.Errorf("enable %s: %w", args[0], err)
			}
			return clustermesh.Enable(clustermesh.EnableOptions{
				Dir: clustermesh.Dir(cfg.Dir), Cluster: cfg.ClusterName, ID: cfg.ClusterID,
				Hosts: append(listenHosts(cfg.StoreListen, cfg.StoreAdvertise, cfg.RemoteListen, cfg.RemoteAdvertise), hosts...), Config: enableConfig(cmd, cfg), Step: step(cmd),
			})
		},
	}
	f := cmd.Flags()
	f.Uint32Var(&cfg.ClusterID, "cluster-id", cfg.ClusterID, "cluster id, 1-255, unique in the mesh")
	f.StringVar(&cfg.RoutingMode, "routing-mode", cfg.RoutingMode, "the cluster's routing mode: tunnel or native")
	f.StringSliceVar(&cfg.PodCIDRPool, "pod-cidr-pool", cfg.PodCIDRPool, "the cluster's pod CIDR pool")
	f.StringVar(&cfg.GlobalCIDR, "global-cidr", cfg.GlobalCIDR, "global addressing: an IPv4 prefix unique in the mesh, at least as large as the pod CIDR pool, e.g. 242.1.0.0/16; lets the cluster share pod CIDRs with other clusters that have one (tunnel routing only; empty: off)")
	f.StringSliceVar(&cfg.ServiceCIDRs, "service-cidr", cfg.ServiceCIDRs, "the cluster's service CIDRs; connected clusters' global CIDRs must not overlap them")
	f.IntVar(&cfg.PodCIDRMaskSize, "pod-cidr-mask-size", cfg.PodCIDRMaskSize, "prefix length of one node's pod CIDR")
	f.StringSliceVar(&cfg.StoreListen, "store-listen", cfg.StoreListen, "https URLs the apiserver's etcd listens on")
	f.StringSliceVar(&cfg.StoreAdvertise, "store-advertise", cfg.StoreAdvertise, "deprecated: remote clusters are told these URLs with the port + 3 unless --remote-advertise is given")
	f.StringSliceVar(&cfg.RemoteListen, "remote-listen", cfg.RemoteListen, "https URLs of the read-only front remote clusters read through (default: each --store-listen URL with the port + 3)")
	f.StringSliceVar(&cfg.RemoteAdvertise, "remote-advertise", cfg.RemoteAdvertise, "URLs remote clusters are told to read at (default: --remote-listen)")
	f.StringSliceVar(&cfg.AdminListen, "admin-listen", cfg.AdminListen, "admin API addresses (default also unix://<dir>/<cluster>/admin.sock)")
	f.StringVar(&cfg.MetricsListen, "metrics-listen", cfg.MetricsListen, "host:port of /metrics")
	f.BoolVar(&cfg.EmbeddedStore, "embedded-store", cfg.EmbeddedStore, "the apiserver's etcd is the cluster's store")
	f.StringSliceVar(&hosts, "host", nil, "more names or addresses for the serving certificate")
	f.StringVar(&cfg.KVStore.Backend, "kvstore", cfg.KVStore.Backend, "the cluster store's backend: etcd or consul")
	f.StringSliceVar(&cfg.KVStore.Endpoints, "kvstore-endpoints", cfg.KVStore.Endpoints, "the cluster store's URLs")
	f.StringVar(&cfg.KVStore.Prefix, "kvstore-prefix", cfg.KVStore.Prefix, "the cluster store's key prefix")
	return cmd
}

// enableKube is enable --context: only --host may be given besides the
// kube flags; the rest comes from the install.
func (m *meshOptions) enableKube(cmd *cobra.Command, args, hosts []string) error {
	if len(args) > 0 {
		return fmt.Errorf("enable --context: the cluster is the one installed there; give no cluster name (got %q)", args[0])
	}
	var set []string
	local := cmd.LocalNonPersistentFlags()
	cmd.Flags().Visit(func(f *pflag.Flag) {
		if f.Name != "host" && local.Lookup(f.Name) != nil {
			set = append(set, "--"+f.Name)
		}
	})
	if len(set) > 0 {
		return fmt.Errorf("enable --context: %s configure a standalone apiserver; on Kubernetes they come from the install (change them with weft install --context ... --set)", strings.Join(set, ", "))
	}
	c, err := openKubeCluster(cmd.Context(), m.kube)
	if err != nil {
		return err
	}
	return c.enable(cmd.Context(), hosts, m.waitTimeout, step(cmd), cmd.ErrOrStderr())
}

// enableConfig is apiserver.json: the flags given, plus the defaults that
// matter to the apiserver.
func enableConfig(cmd *cobra.Command, cfg apiserver.Config) map[string]any {
	out := map[string]any{
		"routing-mode": cfg.RoutingMode, "pod-cidr-pool": cfg.PodCIDRPool, "pod-cidr-mask-size": cfg.PodCIDRMaskSize,
		"store-listen": cfg.StoreListen, "admin-listen": cfg.AdminListen, "metrics-listen": cfg.MetricsListen,
		"kvstore": cfg.KVStore.Backend, "kvstore-endpoints": cfg.KVStore.Endpoints, "kvstore-prefix": cfg.KVStore.Prefix,
	}
	if cfg.GlobalCIDR != "" {
		out["global-cidr"] = cfg.GlobalCIDR
	}
	if cmd.Flags().Changed("service-cidr") {
		out["service-cidr"] = cfg.ServiceCIDRs
	}
	for k, v := range map[string][]string{"store-advertise": cfg.StoreAdvertise, "remote-listen": cfg.RemoteListen, "remote-advertise": cfg.RemoteAdvertise} {
		if len(v) > 0 {
			out[k] = v
		}
	}
	if cfg.EmbeddedStore {
		out["embedded-store"] = true
	}
	return out
}

func listenHosts(lists ...[]string) []string {
	var out []string
	for _, l := range lists {
		for _, raw := range l {
			if u, err := url.Parse(raw); err == nil && u.Hostname() != "" {
				out = append(out, u.Hostname())
			}
		}
	}
	return out
}

// meshClusters lists the clusters with a clustermesh directory under root.
func meshClusters(root string) []string {
	ents, _ := os.ReadDir(root)
	var out []string
	for _, e := range ents {
		if _, err := os.Stat(filepath.Join(root, e.Name(), clustermesh.ConfigFile)); err == nil {
			out = append(out, e.Name())
		}
	}
	slices.Sort(out)
	return out
}

func knownClusters(root string) string {
	if cs := meshClusters(root); len(cs) > 0 {
		return strings.Join(cs, ", ")
	}
	return "none"
}

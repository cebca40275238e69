package cli

import (
	"fmt"
	"log/slog"
	"maps"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/weftnet/weft/testenv"
)

// envName is --name, or the default environment.
func (o *options) envName() string {
	if o.name == "" {
		return testenv.DefaultName
	}
	return o.name
}

func cliLogger(cmd *cobra.Command) *slog.Logger {
	return slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: slog.LevelWarn}))
}

func newTestenvCommand(o *options) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "testenv",
		Short: "Run multi-node Weft clusters in network namespaces on this host",
		Long: `testenv builds Weft environments out of network namespaces on this host:
an underlay bridge, one store per cluster (embedded etcd or a Consul agent),
node namespaces each running a real weft-agent, and pods wired by the real
weft-cni. Everything is named after the environment (--name, default "weft")
and removed by "weft testenv down", also after a crash. Needs root.

State: /var/run/weft/testenv/<name>/ (env.json, agent and store logs).`,
		Example: `  # Three tunnel-mode nodes on etcd, a pod on each of two nodes, ping
  weft testenv up --nodes 3
  weft testenv pod add web --node c1-n1 --labels app=web
  weft testenv pod add client --node c1-n2
  weft testenv exec client -- ping -c1 10.100.0.2
  weft testenv down`,
	}
	cmd.AddCommand(newTestenvUpCommand(o), newTestenvDownCommand(o), newTestenvStatusCommand(o),
		newTestenvExecCommand(o), newTestenvPodCommand(o), newTestenvRunStoreCommand(),
		newTestenvRestartAgentCommand(o), newTestenvKubectlCommand(o), newTestenvRunKubeCommand(o))
	return cmd
}

func newTestenvUpCommand(o *options) *cobra.Command {
	spec := testenv.DefaultSpec()
	var binDir string
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Bring up an environment and wait until every agent is ready",
		Long: `Bring up an environment: the underlay namespace and bridge, each cluster's
store, the node namespaces and their weft-agent processes. Returns once every
agent answers on its socket.

With --kubernetes, each cluster also gets a real kube-apiserver (on its own
etcd; built once from the Go module proxy and cached) that the cluster's
weft-apiserver mirrors into the store, and testenv acts as the kubelet of its
nodes: a Pod bound to a node (or bound round-robin when spec.nodeName is
unset) gets a namespace wired by weft-cni, an echo server on each declared
containerPort and a Running/Ready status with its IP. Drive it with
"weft testenv kubectl". An environment of the same name must not exist
(or pass --replace). The binaries are taken next to this weft binary, or from
--bin-dir. On failure everything created is removed again.`,
		Example: `  weft testenv up --nodes 3
  weft testenv up --name mesh --clusters 2 --nodes 2 --routing native --kvstore consul
  weft testenv up --bin-dir ./bin --replace
  weft testenv up --kubernetes --clusters 2 --nodes 2
  weft testenv up --name ov --clusters 3 --overlapping-pod-cidrs`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			bin, err := testenv.DefaultBinaries(binDir)
			if err != nil {
				return err
			}
			spec.Name, spec.Bin = o.envName(), bin
			spec.Progress, spec.Log = cmd.OutOrStdout(), cliLogger(cmd)
			_, err = testenv.Up(cmd.Context(), spec)
			return err
		},
	}
	f := cmd.Flags()
	f.IntVar(&spec.Clusters, "clusters", spec.Clusters, "number of clusters (1–9), named c1, c2, …")
	f.IntVar(&spec.Nodes, "nodes", spec.Nodes, "nodes per cluster (1–50), named <cluster>-n1, …")
	f.StringVar(&spec.Routing, "routing", spec.Routing, "routing mode: tunnel or native")
	f.StringVar(&spec.KVStore, "kvstore", spec.KVStore, "store backend: etcd or consul")
	f.IntVar(&spec.StoreMembers, "store-members", 1, "etcd members of each cluster's store: 1 or 3")
	f.DurationVar(&spec.LeaseTTL, "lease-ttl", 0, "agents' store lease TTL (0: the agent's default)")
	f.BoolVar(&spec.Kubernetes, "kubernetes", false, "Kubernetes mode: a real kube-apiserver per cluster, mirrored by weft-apiserver; testenv runs the Pods (see weft testenv kubectl)")
	f.BoolVar(&spec.OverlappingPodCIDRs, "overlapping-pod-cidrs", false, "every cluster uses the pod CIDR pool 10.100.0.0/16, with global addressing from 242.<cluster id>.0.0/16 so that they connect (docs/clustermesh.md)")
	f.BoolVar(&spec.Replace, "replace", false, "tear down an existing environment of the same name first")
	f.StringVar(&binDir, "bin-dir", "", "directory holding weft-agent, weft-cni and weft (default: next to this binary)")
	f.StringSliceVar(&spec.AgentArgs, "agent-arg", nil, "extra weft-agent flag, repeatable (e.g. --agent-arg=--health-port=4241)")
	return cmd
}

func newTestenvDownCommand(o *options) *cobra.Command {
	return &cobra.Command{
		Use:   "down",
		Short: "Remove everything of an environment (idempotent; works after a crash)",
		Long: `Stop the environment's agents (SIGTERM) and every other process marked
WEFT_TESTENV=<name>, delete its namespaces, BPF pins
(/sys/fs/bpf/weft-testenv-<name>), cgroups and state directory. Works
without env.json, and on an environment that does not exist.`,
		Example: `  weft testenv down
  weft testenv down --name e2e`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return testenv.Down(cmd.Context(), o.envName(), cmd.OutOrStdout(), cliLogger(cmd))
		},
	}
}

func newTestenvStatusCommand(o *options) *cobra.Command {
	return &cobra.Command{
		Use:   "status",
		Short: "Show the stores, agents and pods of an environment and whether they are healthy",
		Example: `  weft testenv status
  weft testenv status --name e2e`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			e, err := testenv.Load(o.envName(), cmd.ErrOrStderr(), cliLogger(cmd))
			if err != nil {
				return err
			}
			if !e.PrintStatus(cmd.Context(), cmd.OutOrStdout()) {
				return fmt.Errorf("environment %q is not healthy: see the FAIL lines above and the logs in %s", e.Name, e.Dir)
			}
			return nil
		},
	}
}

func newTestenvExecCommand(o *options) *cobra.Command {
	return &cobra.Command{
		Use:   "exec <node|pod> -- <command> [args...]",
		Short: "Run a command in a node's or a pod's network namespace",
		Long: `Run a command inside a node's or a pod's network namespace and in the
node's cgroup (so ClusterIP translation applies). The target is a node name
(c1-n1), a pod name, or node/<name> / pod/<name> to be explicit.`,
		Example: `  weft testenv exec c1-n1 -- ip route
  weft testenv exec pod/client -- ping -c1 10.100.1.2`,
		Args: cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := testenv.Load(o.envName(), cmd.ErrOrStderr(), cliLogger(cmd))
			if err != nil {
				return err
			}
			err = e.Exec(cmd.Context(), args[0], cmd.InOrStdin(), cmd.OutOrStdout(), cmd.ErrOrStderr(), args[1:]...)
			if ee, ok := err.(interface{ ExitCode() int }); ok && ee.ExitCode() > 0 {
				os.Exit(ee.ExitCode()) // the command's own exit code, as `ip netns exec` does
			}
			return err
		},
	}
}

func newTestenvPodCommand(o *options) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "pod",
		Short: "Add or delete pods (network namespaces wired by weft-cni)",
	}
	var labels map[string]string
	var namespace string
	add := &cobra.Command{
		Use:   "add <pod>",
		Short: "Create a pod on a node through weft-cni ADD",
		Long: `Create a pod: a network namespace weft-<env>-pod-<pod>, wired by running the
real weft-cni ADD inside the node's namespace against the node's agent. The
node is --node (default: the environment's first node).`,
		Example: `  weft testenv pod add web-1 --node c1-n2 --labels app=web,tier=front
  weft testenv pod add client`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := testenv.Load(o.envName(), cmd.ErrOrStderr(), cliLogger(cmd))
			if err != nil {
				return err
			}
			node := o.node
			if node == "" && len(e.Nodes) > 0 {
				node = e.Nodes[0].Name
			}
			start := time.Now()
			p, err := e.AddPod(cmd.Context(), testenv.PodSpec{Name: args[0], Node: node, Namespace: namespace, Labels: labels})
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "pod %s on %s: %s (netns %s, labels %s) in %v\n", p.Name, p.Node, p.IP, p.NetNS,
				formatLabels(labels), time.Since(start).Round(time.Millisecond))
			return nil
		},
	}
	add.Flags().StringToStringVar(&labels, "labels", nil, "pod labels, e.g. app=web,tier=front")
	add.Flags().StringVar(&namespace, "namespace", "", "pod namespace (default \"default\")")
	del := &cobra.Command{
		Use:     "del <pod>...",
		Short:   "Delete pods through weft-cni DEL and remove their namespaces",
		Example: `  weft testenv pod del web-1 client`,
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := testenv.Load(o.envName(), cmd.ErrOrStderr(), cliLogger(cmd))
			if err != nil {
				return err
			}
			for _, name := range args {
				if err := e.DelPod(cmd.Context(), name); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "pod %s deleted\n", name)
			}
			return nil
		},
	}
	cmd.AddCommand(add, del)
	return cmd
}

func formatLabels(l map[string]string) string {
	if len(l) == 0 {
		return "none"
	}
	var kv []string
	for _, k := range slices.Sorted(maps.Keys(l)) {
		kv = append(kv, k+"="+l[k])
	}
	return strings.Join(kv, ",")
}

// newTestenvRunStoreCommand is the store process `testenv up` starts in the
// underlay namespace; not for direct use.
func newTestenvRunStoreCommand() *cobra.Command {
	var opts testenv.StoreOptions
	cmd := &cobra.Command{
		Use:    "run-store",
		Short:  "Run an environment's store in the foreground (started by testenv up)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGTERM, os.Interrupt)
			defer stop()
			return testenv.RunStore(ctx, opts, slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), nil)))
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.Backend, "kvstore", testenv.StoreEtcd, "etcd or consul")
	f.StringVar(&opts.DataDir, "data-dir", "", "store data directory")
	f.StringVar(&opts.Listen, "listen", "", "client URL, e.g. http://192.168.0.11:2379")
	f.StringVar(&opts.ConsulBinary, "consul-binary", "", "consul executable (consul backend)")
	f.IntVar(&opts.ForwardFD, "forward-fd", 0, "inherited listening socket to forward to --listen")
	f.IntVar(&opts.Members, "members", 1, "members of the etcd store (member m listens on --listen's port + 10m)")
	f.IntVar(&opts.Member, "member", 0, "which member this process runs (0-based), with --members > 1")
	return cmd
}

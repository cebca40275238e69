package cli

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/weftnet/weft/clustermesh"
)

func newMeshConnectCommand(m *meshOptions) *cobra.Command {
	var (
		mesh bool
		dest kubeFlags
	)
	cmd := &cobra.Command{
		Use:   "connect <cluster-a> <cluster-b> | --mesh <cluster>...",
		Short: "Connect two clusters (or, with --mesh, every pair of several)",
		Long: `Connect clusters both ways: each cluster's apiserver signs a read-only
client certificate for the other (store user remote-<cluster>), and each
learns the other's endpoints and CA; their agents then connect and exchange
nodes, endpoints, identities and services.

Everything is checked before anything changes: the clusters' apiservers
must answer, names and ids must be unique in the mesh (also among clusters
already connected), the routing modes equal and the pod CIDRs disjoint.
Connecting clusters that are connected renews their certificates.

With --context and --destination-context, the two clusters are those Weft
was installed on there (each enabled with "enable --context"); each is
told to read the other at the addresses of its Service weft-clustermesh.`,
		Example: `  weft --name mesh clustermesh connect c1 c2
  weft clustermesh connect --mesh east west north
  weft clustermesh connect --context east --destination-context west`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if m.kubeMode(cmd) {
				ts, cleanup, err := m.kubePair(cmd, args, dest, "connect")
				if err != nil {
					return err
				}
				defer cleanup()
				if err := clustermesh.Connect(cmd.Context(), ts[0], ts[1], step(cmd)); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "connected; follow them with: weft clustermesh status%s\n", m.kube.flag())
				return nil
			}
			pairs, err := meshPairs(args, mesh)
			if err != nil {
				return err
			}
			targets, err := m.targets(args)
			if err != nil {
				return err
			}
			for _, p := range pairs {
				if err := clustermesh.Connect(cmd.Context(), targets[p[0]], targets[p[1]], step(cmd)); err != nil {
					return err
				}
			}
			fmt.Fprintf(cmd.OutOrStdout(), "connected; follow the agents with: weft%s clustermesh status\n", m.nameFlag())
			return nil
		},
	}
	cmd.Flags().BoolVar(&mesh, "mesh", false, "connect every pair of the clusters given (two or more)")
	dest.registerDestination(cmd.Flags())
	return cmd
}

func (f *kubeFlags) registerDestination(fs *pflag.FlagSet) {
	fs.StringVar(&f.context, "destination-context", "", "with --context: the kube context of the other cluster")
	fs.StringVar(&f.kubeconfig, "destination-kubeconfig", "", "with --context: the kubeconfig of the other cluster (default: --kubeconfig's)")
	fs.StringVar(&f.namespace, "destination-namespace", "", "with --context: the namespace Weft runs in on the other cluster (default: --namespace)")
}

// kubePair opens the clusters of --context and --destination-context.
func (m *meshOptions) kubePair(cmd *cobra.Command, args []string, dest kubeFlags, verb string) ([]clustermesh.Target, func(), error) {
	if len(args) > 0 {
		return nil, nil, fmt.Errorf("%s --context: the clusters are those of --context and --destination-context; give no cluster names (got %v)", verb, args)
	}
	if dest.context == "" && dest.kubeconfig == "" {
		return nil, nil, fmt.Errorf("%s --context: %w", verb, errNoDestination)
	}
	if dest.kubeconfig == "" {
		dest.kubeconfig = m.kube.kubeconfig
	}
	if dest.namespace == "" {
		dest.namespace = m.kube.namespace
	}
	return m.kubeTargets(cmd, m.kube, dest)
}

func newMeshDisconnectCommand(m *meshOptions) *cobra.Command {
	var dest kubeFlags
	cmd := &cobra.Command{
		Use:   "disconnect <cluster-a> <cluster-b>",
		Short: "Disconnect two clusters",
		Long: `Disconnect two clusters both ways: each removes the other's record (its
agents drain every node, endpoint and identity learnt from it), the
credentials to reach it and its read-only user. Disconnecting clusters that
are not connected is harmless.`,
		Example: `  weft --name mesh clustermesh disconnect c1 c2
  weft clustermesh disconnect --context east --destination-context west`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if m.kubeMode(cmd) {
				ts, cleanup, err := m.kubePair(cmd, args, dest, "disconnect")
				if err != nil {
					return err
				}
				defer cleanup()
				return clustermesh.Disconnect(cmd.Context(), ts[0], ts[1], step(cmd))
			}
			if len(args) != 2 {
				return fmt.Errorf("disconnect: give exactly two clusters, got %d (%v)", len(args), args)
			}
			targets, err := m.targets(args)
			if err != nil {
				return err
			}
			return clustermesh.Disconnect(cmd.Context(), targets[args[0]], targets[args[1]], step(cmd))
		},
	}
	dest.registerDestination(cmd.Flags())
	return cmd
}

// meshPairs checks the arguments and lists the pairs to connect.
func meshPairs(args []string, mesh bool) ([][2]string, error) {
	seen := map[string]bool{}
	for _, a := range args {
		if seen[a] {
			return nil, fmt.Errorf("connect: cluster %s is named twice; give distinct clusters", a)
		}
		seen[a] = true
	}
	if !mesh {
		if len(args) != 2 {
			return nil, fmt.Errorf("connect: give exactly two clusters (or --mesh and two or more), got %d (%v)", len(args), args)
		}
		return [][2]string{{args[0], args[1]}}, nil
	}
	if len(args) < 2 {
		return nil, fmt.Errorf("connect --mesh: give two or more clusters, got %d (%v)", len(args), args)
	}
	var out [][2]string
	for i, a := range args {
		for _, b := range args[i+1:] {
			out = append(out, [2]string{a, b})
		}
	}
	return out, nil
}

// targets loads every named cluster before anything is done.
func (m *meshOptions) targets(names []string) (map[string]clustermesh.Target, error) {
	out := map[string]clustermesh.Target{}
	var errs []error
	for _, n := range names {
		t, err := m.target(n)
		if err != nil {
			errs = append(errs, fmt.Errorf("%w (clusters under %s: %s)", err, m.root(), knownClusters(m.root())))
			continue
		}
		out[n] = t
	}
	return out, errors.Join(errs...)
}

func (m *meshOptions) nameFlag() string {
	if m.o.name != "" && m.dir == "" {
		return " --name " + m.o.name
	}
	return ""
}

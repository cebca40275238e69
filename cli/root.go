package cli

import (
	"github.com/spf13/cobra"
)

// NewRootCommand builds the weft command tree. version is the CLI's own
// version, printed by `weft version`.
func NewRootCommand(version string, opts ...Option) *cobra.Command {
	o := defaultOptions()
	for _, opt := range opts {
		opt(o)
	}
	return newRootCommand(version, o)
}

func newRootCommand(version string, o *options) *cobra.Command {
	root := &cobra.Command{
		Use:   "weft",
		Short: "Inspect a Weft network fabric through its node agents",
		Long: `weft inspects a Weft network fabric: it asks one node's weft-agent
(over the agent's unix socket) for its health, nodes, endpoints, identities,
ipcache, services and BPF maps. "weft testenv" and "weft connectivity" build
and test environments of network namespaces on this host.

By default it talks to the agent of this host (--socket, WEFT_SOCKET). With
--name it talks to a node of a testenv environment instead: the first node,
or the one given with --node.

Output is a table; -o json and -o yaml print the agent's API messages with
their proto field names, for scripts.`,
		Example: `  # Is this node healthy?
  weft status

  # The endpoints of node c1-n2 of testenv environment "e2e", as JSON
  weft --name e2e --node c1-n2 endpoint list -o json`,
		SilenceErrors: true,
		SilenceUsage:  true,
		// Subcommands must not set PersistentPreRunE: it would replace this
		// one, which applies WEFT_* variables and checks the shared flags.
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.complete(cmd.Root().PersistentFlags()); err != nil {
				return err
			}
			return checkOutput(cmd, o.output)
		},
	}
	root.CompletionOptions.DisableDefaultCmd = true
	o.registerFlags(root)

	root.AddCommand(
		newStatusCommand(o),
		newNodeCommand(o),
		newEndpointCommand(o),
		newIdentityCommand(o),
		newIPCacheCommand(o),
		newBPFCommand(o),
		newServiceCommand(o),
		newVersionCommand(o, version),
		newSysdumpCommand(o, version),
		newCompletionCommand(),
	)

	// ---- Commands owned by other engineers: one line each, constructor in
	// ---- its own file, taking the shared options (--name, --node, -o, ...).
	root.AddCommand(newTestenvCommand(o))               // cli/testenv.go
	root.AddCommand(newConnectivityCommand(o, version)) // cli/connectivity.go
	root.AddCommand(newPolicyCommand(o))                // cli/policy.go
	root.AddCommand(newFQDNCommand(o))                  // cli/fqdn.go
	root.AddCommand(newIngressCommand(o))               // cli/ingress.go
	root.AddCommand(newClusterMeshCommand(o))           // cli/clustermesh.go
	root.AddCommand(newPreflightCommand(o))             // cli/preflight.go
	root.AddCommand(newObserveCommand(o))               // cli/observe.go
	root.AddCommand(newInstallCNICommand())             // cli/install_cni.go
	root.AddCommand(newInstallCommand(o))               // cli/install.go
	root.AddCommand(newUninstallCommand())              // cli/uninstall.go
	root.AddCommand(newL7LBCommand(o))                  // cli/l7lb.go
	// ---- end of other engineers' commands.

	rejectUnknownSubcommands(root) // after every AddCommand
	return root
}

package cli

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/weftnet/weft/internal/toolcache"
	"github.com/weftnet/weft/testenv"
)

func newTestenvKubectlCommand(o *options) *cobra.Command {
	var cluster string
	cmd := &cobra.Command{
		Use:   "kubectl [--cluster c1] -- <kubectl arguments>",
		Short: "Run kubectl against a cluster of a Kubernetes-mode environment",
		Long: `Run a real kubectl (the release of testenv's kube-apiserver, built once from
the Go module proxy and cached) with KUBECONFIG set to the cluster's admin
kubeconfig. Standard input, output and the exit code are kubectl's. The
environment must have been brought up with --kubernetes.`,
		Example: `  weft testenv kubectl -- get pods -A -o wide
  weft testenv kubectl --cluster c2 -- apply -f web.yaml
  weft testenv kubectl -- wait --for=condition=Ready pod/web --timeout=60s`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := testenv.Load(o.envName(), cmd.ErrOrStderr(), cliLogger(cmd))
			if err != nil {
				return err
			}
			c, err := e.Cluster(cluster)
			if err != nil {
				return err
			}
			if c.Kubeconfig == "" {
				return fmt.Errorf("environment %q has no Kubernetes: bring it up with `weft testenv up --kubernetes`", e.Name)
			}
			bin, err := toolcache.Ensure(cmd.Context(), toolcache.Kubectl(), cmd.ErrOrStderr())
			if err != nil {
				return fmt.Errorf("find kubectl: %w", err)
			}
			kc := exec.CommandContext(cmd.Context(), bin, args...)
			kc.Env = append(os.Environ(), "KUBECONFIG="+c.Kubeconfig)
			kc.Stdin, kc.Stdout, kc.Stderr = cmd.InOrStdin(), cmd.OutOrStdout(), cmd.ErrOrStderr()
			err = kc.Run()
			var ee *exec.ExitError
			if errors.As(err, &ee) && ee.ExitCode() > 0 {
				os.Exit(ee.ExitCode()) // kubectl said why on stderr
			}
			return err
		},
	}
	cmd.Flags().StringVar(&cluster, "cluster", "c1", "cluster whose kube-apiserver to talk to")
	return cmd
}

// newTestenvRunKubeCommand is the process `testenv up --kubernetes` starts
// per cluster; not for direct use.
func newTestenvRunKubeCommand(o *options) *cobra.Command {
	var cluster string
	cmd := &cobra.Command{
		Use:    "run-kube",
		Short:  "Run a cluster's kube-apiserver and testenv's kubelet in the foreground (started by testenv up)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGTERM, os.Interrupt)
			defer stop()
			return testenv.RunKube(ctx, o.envName(), cluster, slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), nil)))
		},
	}
	cmd.Flags().StringVar(&cluster, "cluster", "", "cluster to run")
	return cmd
}

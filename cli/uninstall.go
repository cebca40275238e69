package cli

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/cobra"
)

func newUninstallCommand() *cobra.Command {
	var f kubeFlags
	var deleteCRDs bool
	cmd := &cobra.Command{
		Use:   "uninstall",
		Short: "Remove what \"weft install\" applied to a Kubernetes cluster",
		Long: `Delete every object the last "weft install" into the namespace applied (as
recorded in its ConfigMap weft-install), the newest first, and say what was
deleted. The chart's CRDs stay, with the policies in them, unless
--delete-crds is given; with it, the command deletes the objects of those
kinds and returns once the CRDs are gone. The namespace stays (it may hold
your Secrets).
Running it again finds nothing to remove and succeeds.

Nodes keep weft-cni, its configuration list and the pinned BPF maps (see
docs/deploy-kubernetes.md, "Upgrade and uninstall").`,
		Example: `  weft uninstall
  weft uninstall --context prod --delete-crds`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			k, err := f.connect()
			if err != nil {
				return err
			}
			return k.uninstall(cmd.Context(), f.namespace, deleteCRDs, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	f.register(cmd.Flags())
	cmd.Flags().BoolVar(&deleteCRDs, "delete-crds", false, "also delete the chart's CRDs and every policy, ServiceExport and ServiceImport in them")
	return cmd
}

func (k *kube) uninstall(ctx context.Context, ns string, deleteCRDs bool, out, progress io.Writer) error {
	refs, found, err := k.readInventory(ctx, ns)
	if err != nil {
		return err
	}
	if !found {
		fmt.Fprintf(out, "Weft is not installed in namespace %s of %s (no configmap/%s): nothing to remove\n", ns, k.host, inventoryName)
		return nil
	}
	var crds []string
	if deleteCRDs {
		if crds, err = k.emptyCRDs(ctx, refs); err != nil {
			return err
		}
	}
	var kept []ref
	for i := len(refs) - 1; i >= 0; i-- {
		r := refs[i]
		if r.Kind == crdKind && !deleteCRDs {
			kept = append(kept, r)
			continue
		}
		gone, err := k.remove(ctx, r)
		if err != nil {
			return err
		}
		if gone {
			fmt.Fprintf(out, "%s deleted\n", r)
		} else {
			fmt.Fprintf(out, "%s already gone\n", r)
		}
	}
	// The inventory goes last, once the CRDs are gone: an uninstall that
	// fails waiting for them can be run again.
	if err := k.waitCRDsGone(ctx, crds, crdGoneTimeout, progress); err != nil {
		return err
	}
	inv := ref{APIVersion: "v1", Kind: "ConfigMap", Namespace: ns, Name: inventoryName}
	if _, err := k.remove(ctx, inv); err != nil {
		return err
	}
	fmt.Fprintf(out, "%s deleted\n", inv)
	for _, r := range kept {
		fmt.Fprintf(out, "%s kept (--delete-crds deletes it with every object of its kind)\n", r)
	}
	return nil
}

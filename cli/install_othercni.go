package cli

import (
	"context"
	"fmt"
	"sort"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// knownCNIs are the DaemonSets other network plugins run on every node,
// by name, with the plugin's name. Another CNI's configuration file on a
// node is not visible through the API; its DaemonSet is.
var knownCNIs = map[string]string{
	"cilium":           "Cilium",
	"calico-node":      "Calico",
	"canal":            "Canal",
	"kube-flannel-ds":  "flannel",
	"kube-flannel":     "flannel",
	"weave-net":        "Weave Net",
	"kube-router":      "kube-router",
	"antrea-agent":     "Antrea",
	"aws-node":         "Amazon VPC CNI",
	"azure-cns":        "Azure CNI",
	"kindnet":          "kindnet",
	"ovnkube-node":     "OVN-Kubernetes",
	"kube-ovn-cni":     "Kube-OVN",
	"multus":           "Multus",
	"kube-multus-ds":   "Multus",
	"romana-agent":     "Romana",
	"contiv-netplugin": "Contiv",
}

// otherCNIs lists the DaemonSets of other network plugins in any
// namespace, as "namespace/name (Plugin)".
func otherCNIs(ctx context.Context, c kubernetes.Interface) ([]string, error) {
	dss, err := c.AppsV1().DaemonSets(metav1.NamespaceAll).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list DaemonSets to look for another CNI: %w (pass --force to skip the check)", err)
	}
	var found []string
	for _, ds := range dss.Items {
		if plugin, ok := knownCNIs[ds.Name]; ok {
			found = append(found, fmt.Sprintf("DaemonSet %s/%s (%s)", ds.Namespace, ds.Name, plugin))
		}
	}
	sort.Strings(found)
	return found, nil
}

func otherCNIError(found []string) error {
	return fmt.Errorf("another network plugin runs in this cluster: %s; two plugins on one node fight over the pods' networking. "+
		"Remove it first, or pass --force to install Weft anyway; nothing was applied", strings.Join(found, ", "))
}

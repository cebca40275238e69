package k8s

import (
	"fmt"

	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/yaml"

	"github.com/weftnet/weft/policy"
	"github.com/weftnet/weft/state/records"
)

// The Cilium policy resources (crds/).
var (
	GVRCiliumNetworkPolicy            = schema.GroupVersionResource{Group: "cilium.io", Version: "v2", Resource: "ciliumnetworkpolicies"}
	GVRCiliumClusterwideNetworkPolicy = schema.GroupVersionResource{Group: "cilium.io", Version: "v2", Resource: "ciliumclusterwidenetworkpolicies"}
)

// networkPolicyDocument is the YAML `weft policy import` accepts for a
// NetworkPolicy: apiVersion, kind, name, namespace, labels and spec.
func networkPolicyDocument(np *networkingv1.NetworkPolicy) ([]byte, error) {
	meta := map[string]any{"name": np.Name, "namespace": np.Namespace}
	if len(np.Labels) > 0 {
		meta["labels"] = np.Labels
	}
	return yaml.Marshal(map[string]any{
		"apiVersion": policy.APIVersionKubernetes, "kind": policy.KindKubernetes, "metadata": meta, "spec": np.Spec,
	})
}

// ciliumDocument is the same for a Cilium(Clusterwide)NetworkPolicy: its
// spec and specs as stored, without status and server-set metadata.
func ciliumDocument(u *unstructured.Unstructured) ([]byte, error) {
	meta := map[string]any{"name": u.GetName()}
	if ns := u.GetNamespace(); ns != "" {
		meta["namespace"] = ns
	}
	if ls := u.GetLabels(); len(ls) > 0 {
		meta["labels"] = ls
	}
	doc := map[string]any{"apiVersion": u.GetAPIVersion(), "kind": u.GetKind(), "metadata": meta}
	for _, f := range []string{"spec", "specs"} {
		if v, ok := u.Object[f]; ok {
			doc[f] = v
		}
	}
	return yaml.Marshal(doc)
}

// policyRecord parses a document as `weft policy import` does: a policy
// the datapath cannot enforce is an error.
func policyRecord(doc []byte) (records.PolicyRef, error) {
	ps, err := policy.Parse(doc)
	if err != nil {
		return records.PolicyRef{}, err
	}
	if len(ps) != 1 {
		return records.PolicyRef{}, fmt.Errorf("the document holds %d policies, expected 1", len(ps))
	}
	p := ps[0]
	return records.PolicyRef{Namespace: p.StoreNamespace(), Name: p.Name, Format: p.Format(), Source: SourceKubernetes, Document: p.Document}, nil
}

package k8s

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/cache"

	"github.com/weftnet/weft/state/records"
)

// Kubernetes kinds as problems name them.
const (
	kindNamespace     = "Namespace"
	kindPod           = "Pod"
	kindService       = "Service"
	kindEndpointSlice = "EndpointSlice"
	kindNetworkPolicy = "NetworkPolicy"
)

// meta extracts an object's metadata, also from a deletion tombstone.
func meta(obj any) (metav1.Object, bool) {
	if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = d.Obj
	}
	m, ok := obj.(metav1.Object)
	return m, ok
}

func (t *term) namespaceItems(obj any) []item {
	if m, ok := meta(obj); ok {
		t.wakeImporter() // imports follow their namespace
		return []item{{records.KindK8sNamespaces, "", m.GetName()}}
	}
	return nil
}

func (t *term) podItems(obj any) []item {
	if m, ok := meta(obj); ok {
		return []item{{records.KindK8sPods, m.GetNamespace(), m.GetName()}}
	}
	return nil
}

func (t *term) serviceItems(obj any) []item {
	if m, ok := meta(obj); ok {
		t.wakeImporter() // an exported Service's ports, or a derived one's address
		if name := importedName(m); name != "" {
			return []item{{records.KindK8sServices, m.GetNamespace(), name}}
		}
		return []item{{records.KindK8sServices, m.GetNamespace(), m.GetName()}}
	}
	return nil
}

// exportItems: a ServiceExport changes its Service's record and the imports.
func (t *term) exportItems(obj any) []item {
	t.wakeImporter()
	return t.serviceItems(obj)
}

func (t *term) wakeImporter() {
	select {
	case t.importChanged <- struct{}{}:
	default:
	}
}

func (t *term) sliceItems(obj any) []item {
	if m, ok := meta(obj); ok {
		if svc := m.GetLabels()[discoveryv1.LabelServiceName]; svc != "" {
			return []item{{records.KindK8sServices, m.GetNamespace(), svc}}
		}
	}
	return nil
}

func (t *term) netpolItems(obj any) []item {
	if m, ok := meta(obj); ok {
		return []item{{records.KindK8sPolicies, m.GetNamespace(), m.GetName()}}
	}
	return nil
}

func (t *term) ciliumItems(obj any) []item { return t.netpolItems(obj) }

// reconcile brings one record in line with the caches. It returns the
// record's key while its object exists (also when the object cannot be
// mirrored: the store keeps what it had), and an error only when the store
// could not be written.
func (t *term) reconcile(ctx context.Context, it item) (string, error) {
	switch it.kind {
	case records.KindK8sNamespaces:
		return t.reconcileNamespace(ctx, it)
	case records.KindK8sPods:
		return t.reconcilePod(ctx, it)
	case records.KindK8sServices:
		return t.reconcileService(ctx, it)
	case records.KindK8sPolicies:
		return t.reconcilePolicy(ctx, it)
	case records.KindK8sIngresses:
		return t.reconcileIngress(ctx, it)
	case records.KindK8sIngressSecrets:
		return t.reconcileIngressSecret(ctx, it)
	}
	return "", fmt.Errorf("unknown kind %q", it.kind)
}

// apply writes rec under key, or reports why obj cannot be mirrored.
func (t *term) apply(ctx context.Context, w *writer, key string, rec records.Record, convErr error, obj runtime.Object, kind, ns, name string) (string, error) {
	var skip errSkip
	switch {
	case errors.As(convErr, &skip):
		t.problems.clear(kind, ns, name)
		return "", w.remove(ctx, key)
	case convErr != nil:
		t.problems.report(obj, kind, ns, name, convErr.Error())
		return key, nil
	}
	val, err := records.Encode(key, rec)
	if err != nil {
		t.problems.report(obj, kind, ns, name, err.Error())
		return key, nil
	}
	t.problems.clear(kind, ns, name)
	return key, w.put(ctx, key, val)
}

func (t *term) reconcileNamespace(ctx context.Context, it item) (string, error) {
	w, key := t.writers[it.kind], t.s.keys.Namespace(t.s.cfg.Cluster, it.name)
	ns, err := t.namespaces.Get(it.name)
	if apierrors.IsNotFound(err) {
		t.problems.clear(kindNamespace, "", it.name)
		return "", w.remove(ctx, key)
	}
	rec, err := namespaceRecord(t.s.cfg.Cluster, ns)
	return t.apply(ctx, w, key, &rec, err, ns, kindNamespace, "", it.name)
}

func (t *term) reconcilePod(ctx context.Context, it item) (string, error) {
	w, key := t.writers[it.kind], t.s.keys.Pod(t.s.cfg.Cluster, it.namespace, it.name)
	pod, err := t.pods.Pods(it.namespace).Get(it.name)
	if apierrors.IsNotFound(err) {
		t.problems.clear(kindPod, it.namespace, it.name)
		return "", w.remove(ctx, key)
	}
	rec, err := podRecord(t.s.cfg.Cluster, pod)
	return t.apply(ctx, w, key, &rec, err, pod, kindPod, it.namespace, it.name)
}

func (t *term) reconcileService(ctx context.Context, it item) (string, error) {
	w, key := t.writers[it.kind], t.s.keys.Service(t.s.cfg.Cluster, it.namespace, it.name)
	sel := labels.SelectorFromSet(labels.Set{discoveryv1.LabelServiceName: it.name})
	eps, _ := t.slices.EndpointSlices(it.namespace).List(sel)
	slices.SortFunc(eps, func(a, b *discoveryv1.EndpointSlice) int { return strings.Compare(a.Name, b.Name) })
	svc, err := t.services.Services(it.namespace).Get(it.name)
	if apierrors.IsNotFound(err) {
		if d := t.derivedFor(it.namespace, it.name); d != nil { // imported only: the derived Service's record
			var rec records.Service
			obj, err := t.mcsRecord(it.namespace, it.name, nil, &rec, nil)
			return t.apply(ctx, w, key, &rec, err, obj, kindService, it.namespace, derivedName(it.name))
		}
		t.problems.clear(kindService, it.namespace, it.name)
		var names []string
		for _, sl := range eps {
			names = append(names, sl.Name)
			t.problems.report(sl, kindEndpointSlice, sl.Namespace, sl.Name,
				fmt.Sprintf("EndpointSlice of Service %s/%s, which does not exist: its endpoints are not mirrored", it.namespace, it.name))
		}
		t.setSliceProblems(it, names)
		return "", w.remove(ctx, key)
	}
	t.setSliceProblems(it, nil)
	rec, err := serviceRecord(t.s.cfg.Cluster, svc, eps)
	_, err = t.mcsRecord(it.namespace, it.name, svc, &rec, err)
	return t.apply(ctx, w, key, &rec, err, svc, kindService, it.namespace, it.name)
}

// setSliceProblems clears the problems of a service's slices that are no
// longer reported (the Service appeared, or the slice is gone).
func (t *term) setSliceProblems(it item, names []string) {
	t.mu.Lock()
	old := t.sliceProblems[it]
	if len(names) == 0 {
		delete(t.sliceProblems, it)
	} else {
		t.sliceProblems[it] = names
	}
	t.mu.Unlock()
	for _, n := range old {
		if !slices.Contains(names, n) {
			t.problems.clear(kindEndpointSlice, it.namespace, n)
		}
	}
}

// reconcilePolicy mirrors the policy stored under a namespace and name: a
// CiliumNetworkPolicy wins over a NetworkPolicy of the same name, which is
// then reported.
func (t *term) reconcilePolicy(ctx context.Context, it item) (string, error) {
	storeNS := it.namespace
	if storeNS == "" {
		storeNS = records.PolicyClusterwide
	}
	w, key := t.writers[it.kind], t.s.keys.Policy(storeNS, it.name)
	var cilium *unstructured.Unstructured
	kind := "CiliumClusterwideNetworkPolicy"
	if it.namespace == "" && t.ccnp != nil {
		cilium = getUnstructured(t.ccnp.Get(it.name))
	} else if it.namespace != "" && t.cnp != nil {
		kind = "CiliumNetworkPolicy"
		cilium = getUnstructured(t.cnp.ByNamespace(it.namespace).Get(it.name))
	}
	var np *networkingv1.NetworkPolicy
	if it.namespace != "" {
		np, _ = t.netpols.NetworkPolicies(it.namespace).Get(it.name)
	}
	switch {
	case cilium != nil:
		if np != nil {
			t.problems.report(np, kindNetworkPolicy, np.Namespace, np.Name,
				"a CiliumNetworkPolicy of the same name is mirrored in its place (the store holds one policy per namespace and name)")
		} else {
			t.problems.clear(kindNetworkPolicy, it.namespace, it.name)
		}
		doc, err := ciliumDocument(cilium)
		var rec records.PolicyRef
		if err == nil {
			rec, err = policyRecord(doc)
		}
		return t.apply(ctx, w, key, &rec, err, cilium, kind, it.namespace, it.name)
	case np != nil:
		t.problems.clear("CiliumNetworkPolicy", it.namespace, it.name)
		doc, err := networkPolicyDocument(np)
		var rec records.PolicyRef
		if err == nil {
			rec, err = policyRecord(doc)
		}
		return t.apply(ctx, w, key, &rec, err, np, kindNetworkPolicy, it.namespace, it.name)
	}
	t.problems.clear(kind, it.namespace, it.name)
	t.problems.clear(kindNetworkPolicy, it.namespace, it.name)
	return "", w.remove(ctx, key)
}

func getUnstructured(obj runtime.Object, err error) *unstructured.Unstructured {
	if err != nil {
		return nil
	}
	u, _ := obj.(*unstructured.Unstructured)
	return u
}

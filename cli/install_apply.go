package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"k8s.io/client-go/tools/clientcmd"
)

// fieldManager owns every field `weft install` applies (server-side apply).
const fieldManager = "weft"

// inventoryName is the ConfigMap in the install namespace listing what
// `weft install` applied: `weft uninstall` deletes exactly these objects,
// and a later install deletes those its chart no longer renders.
const inventoryName = "weft-install"

// kubeFlags select the cluster as kubectl does: --kubeconfig, else the
// KUBECONFIG variable (a list of files), else ~/.kube/config; --context,
// else the kubeconfig's current context.
type kubeFlags struct {
	kubeconfig, context, namespace string
}

// kube is a connection to one cluster.
type kube struct {
	host    string
	client  kubernetes.Interface
	dynamic dynamic.Interface
	mapper  *restmapper.DeferredDiscoveryRESTMapper
}

func (f kubeFlags) connect() (*kube, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = f.kubeconfig
	cc := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{CurrentContext: f.context})
	cfg, err := cc.ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("load kubeconfig: %w (give --kubeconfig and --context, or set KUBECONFIG)", err)
	}
	if cfg.QPS == 0 { // client-go's 5/s would pace an install of ~20 objects to seconds
		cfg.QPS, cfg.Burst = 50, 100
	}
	return newKube(cfg)
}

func newKube(cfg *rest.Config) (*kube, error) {
	k := &kube{host: cfg.Host}
	var err error
	if k.client, err = kubernetes.NewForConfig(cfg); err != nil {
		return nil, fmt.Errorf("kubernetes client for %s: %w", cfg.Host, err)
	}
	if k.dynamic, err = dynamic.NewForConfig(cfg); err != nil {
		return nil, fmt.Errorf("kubernetes client for %s: %w", cfg.Host, err)
	}
	k.mapper = restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(k.client.Discovery()))
	return k, nil
}

// decodeObjects splits a rendered manifest into objects, skipping empty
// documents.
func decodeObjects(manifest string) ([]*unstructured.Unstructured, error) {
	dec := utilyaml.NewYAMLOrJSONDecoder(strings.NewReader(manifest), 4096)
	var objs []*unstructured.Unstructured
	for {
		var m map[string]any
		if err := dec.Decode(&m); err != nil {
			if errors.Is(err, io.EOF) {
				return objs, nil
			}
			return nil, fmt.Errorf("decode rendered manifest: %w", err)
		}
		if len(m) == 0 {
			continue
		}
		objs = append(objs, &unstructured.Unstructured{Object: m})
	}
}

// ref names one object: what the inventory stores and output prints.
type ref struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Namespace  string `json:"namespace,omitempty"`
	Name       string `json:"name"`
}

func refOf(u *unstructured.Unstructured) ref {
	return ref{APIVersion: u.GetAPIVersion(), Kind: u.GetKind(), Namespace: u.GetNamespace(), Name: u.GetName()}
}

// String is kubectl's kind.group/name form, namespace first.
func (r ref) String() string {
	gv, _ := schema.ParseGroupVersion(r.APIVersion)
	kind := strings.ToLower(r.Kind)
	if gv.Group != "" {
		kind += "." + gv.Group
	}
	if r.Namespace != "" {
		return r.Namespace + "/" + kind + "/" + r.Name
	}
	return kind + "/" + r.Name
}

const crdKind = "CustomResourceDefinition"

// resource finds the API resource of r, setting the namespace of a
// namespaced object that has none.
func (k *kube) resource(r ref) (dynamic.ResourceInterface, *meta.RESTMapping, error) {
	gv, err := schema.ParseGroupVersion(r.APIVersion)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: parse apiVersion: %w", r, err)
	}
	m, err := k.mapper.RESTMapping(gv.WithKind(r.Kind).GroupKind(), gv.Version)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: the cluster does not serve %s %s (a CRD it needs is missing, e.g. the Prometheus operator's for serviceMonitor.enabled): %w", r, r.APIVersion, r.Kind, err)
	}
	if m.Scope.Name() == meta.RESTScopeNameNamespace {
		return k.dynamic.Resource(m.Resource).Namespace(r.Namespace), m, nil
	}
	return k.dynamic.Resource(m.Resource), m, nil
}

// apply applies one object with server-side apply (field manager "weft",
// conflicts forced: the installer owns what the chart renders) and
// returns what happened: created, configured or unchanged.
func (k *kube) apply(ctx context.Context, u *unstructured.Unstructured) (string, error) {
	r := refOf(u)
	ri, _, err := k.resource(r)
	if err != nil {
		return "", err
	}
	before, err := ri.Get(ctx, r.Name, metav1.GetOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return "", fmt.Errorf("get %s: %w", r, err)
	}
	after, err := ri.Apply(ctx, r.Name, u, metav1.ApplyOptions{FieldManager: fieldManager, Force: true})
	if err != nil {
		return "", fmt.Errorf("apply %s: %w", r, err)
	}
	switch {
	case before == nil:
		return "created", nil
	case before.GetResourceVersion() == after.GetResourceVersion():
		return "unchanged", nil
	default:
		return "configured", nil
	}
}

// waitEstablished waits until the CRD is served (condition Established).
func (k *kube) waitEstablished(ctx context.Context, name string, timeout time.Duration) error {
	var last string
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		crd, found, err := k.getCRD(ctx, name)
		switch {
		case err != nil:
			last = err.Error()
			return false, nil
		case !found:
			last = "not found"
			return false, nil
		}
		for _, c := range crd.Status.Conditions {
			if c.Type == apiextensionsv1.Established {
				if c.Status == apiextensionsv1.ConditionTrue {
					return true, nil
				}
				last = fmt.Sprintf("Established=%v: %v %v", c.Status, c.Reason, c.Message)
			}
		}
		return false, nil
	})
	if err != nil {
		return fmt.Errorf("wait for CRD %s to be established: %w (last: %s)", name, err, last)
	}
	return nil
}

// ensureNamespace creates the namespace when missing.
func (k *kube) ensureNamespace(ctx context.Context, ns string) (created bool, err error) {
	_, err = k.client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{FieldManager: fieldManager})
	switch {
	case err == nil:
		return true, nil
	case apierrors.IsAlreadyExists(err):
		return false, nil
	default:
		return false, fmt.Errorf("create namespace %s: %w", ns, err)
	}
}

// readInventory returns what the last install in ns applied; found is
// false when nothing was installed there.
func (k *kube) readInventory(ctx context.Context, ns string) (refs []ref, found bool, err error) {
	cm, err := k.client.CoreV1().ConfigMaps(ns).Get(ctx, inventoryName, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("read the install inventory %s/configmap/%s: %w", ns, inventoryName, err)
	}
	if err := json.Unmarshal([]byte(cm.Data["objects"]), &refs); err != nil {
		return nil, true, fmt.Errorf("parse the install inventory %s/configmap/%s: %w", ns, inventoryName, err)
	}
	return refs, true, nil
}

func (k *kube) writeInventory(ctx context.Context, ns string, refs []ref) error {
	b, err := json.MarshalIndent(refs, "", " ")
	if err != nil {
		return err
	}
	cm := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "v1", "kind": "ConfigMap",
		"metadata": map[string]any{"name": inventoryName, "namespace": ns,
			"labels": map[string]any{"app.kubernetes.io/part-of": "weft", "app.kubernetes.io/managed-by": "weft-install"}},
		"data": map[string]any{"objects": string(b)},
	}}
	if _, err := k.apply(ctx, cm); err != nil {
		return fmt.Errorf("write the install inventory: %w", err)
	}
	return nil
}

// remove deletes one object (dependents in the background); gone is false
// when it did not exist.
func (k *kube) remove(ctx context.Context, r ref) (gone bool, err error) {
	ri, _, err := k.resource(r)
	if err != nil {
		if meta.IsNoMatchError(errors.Unwrap(err)) {
			return false, nil // its kind is no longer served: the object went with its CRD
		}
		return false, err
	}
	bg := metav1.DeletePropagationBackground
	err = ri.Delete(ctx, r.Name, metav1.DeleteOptions{PropagationPolicy: &bg})
	if apierrors.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("delete %s: %w", r, err)
	}
	return true, nil
}

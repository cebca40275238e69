package cli

import (
	"context"
	"fmt"
	"io"
	"time"

	"golang.org/x/sync/errgroup"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apimachinery/pkg/util/wait"
)

var crdResource = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}

// crdGoneTimeout bounds how long uninstall waits for deleted CRDs to
// disappear; a CRD goes once the apiserver has deleted its instances.
const crdGoneTimeout = 2 * time.Minute

// getCRD reads a CRD; found is false when it does not exist.
func (k *kube) getCRD(ctx context.Context, name string) (crd *apiextensionsv1.CustomResourceDefinition, found bool, err error) {
	u, err := k.dynamic.Resource(crdResource).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("get CRD %s: %w", name, err)
	}
	crd = &apiextensionsv1.CustomResourceDefinition{}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, crd); err != nil {
		return nil, false, fmt.Errorf("decode CRD %s: %w", name, err)
	}
	return crd, true, nil
}

// emptyCRDs deletes the objects of every CRD among refs, all CRDs at once
// (listing a kind first waits a second for its storage), and returns the
// names of the CRDs that exist.
func (k *kube) emptyCRDs(ctx context.Context, refs []ref) ([]string, error) {
	var names []string
	g, gctx := errgroup.WithContext(ctx)
	for _, r := range refs {
		if r.Kind != crdKind {
			continue
		}
		crd, found, err := k.getCRD(ctx, r.Name)
		if err != nil {
			return nil, err
		}
		if !found {
			continue
		}
		names = append(names, r.Name)
		g.Go(func() error { return k.deleteInstances(gctx, crd, crdGoneTimeout) })
	}
	return names, g.Wait()
}

// deleteInstances deletes every object of a CRD's kind, namespace by
// namespace, before the CRD itself is deleted. It retries while the
// apiserver's storage for the kind is still initialising (a CRD created a
// moment ago): the apiserver's own cleanup of a deleted CRD fails on that
// and, through a stale-cache conflict in its finalizer, may not retry for
// minutes, leaving the CRD Terminating.
func (k *kube) deleteInstances(ctx context.Context, crd *apiextensionsv1.CustomResourceDefinition, timeout time.Duration) error {
	version := ""
	for _, v := range crd.Spec.Versions {
		if v.Served && (version == "" || v.Storage) {
			version = v.Name
		}
	}
	if version == "" {
		return nil // nothing served, nothing to list
	}
	gvr := schema.GroupVersionResource{Group: crd.Spec.Group, Version: version, Resource: crd.Spec.Names.Plural}
	var last error
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		list, err := k.dynamic.Resource(gvr).List(ctx, metav1.ListOptions{ResourceVersion: "0"})
		switch {
		case apierrors.IsNotFound(err):
			return true, nil // the kind is not served: nothing of it to delete
		case apierrors.IsForbidden(err) || apierrors.IsUnauthorized(err):
			return false, err // retrying will not help
		case err != nil:
			last = err // e.g. 429 while the kind's storage initialises
			return false, nil
		}
		namespaces := sets.New[string]()
		for _, item := range list.Items {
			namespaces.Insert(item.GetNamespace())
		}
		for _, ns := range sets.List(namespaces) {
			ri := k.dynamic.Resource(gvr).Namespace(ns)
			if crd.Spec.Scope == apiextensionsv1.ClusterScoped {
				ri = k.dynamic.Resource(gvr)
			}
			if err := ri.DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{}); err != nil {
				if apierrors.IsForbidden(err) || apierrors.IsUnauthorized(err) {
					return false, err
				}
				last = err
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil && last != nil {
		return fmt.Errorf("delete the %s of CRD %s: %w (last error: %v); the chart's objects and CRDs are all still there: run it again to retry", crd.Spec.Names.Plural, crd.Name, err, last)
	}
	if err != nil {
		return fmt.Errorf("delete the %s of CRD %s: %w; the chart's objects and CRDs are all still there", crd.Spec.Names.Plural, crd.Name, err)
	}
	return nil
}

// waitCRDsGone waits until every named CRD is gone, saying on progress
// which ones it waits for. A CRD whose cleanup failed (condition
// Terminating, reason InstanceDeletionFailed) is nudged with an annotation:
// the apiserver's finalizer requeues a CRD on any change but its own
// condition, and otherwise may wait for its five-minute resync.
func (k *kube) waitCRDsGone(ctx context.Context, names []string, timeout time.Duration, progress io.Writer) error {
	pending := sets.New(names...)
	said := false
	nudged := map[string]time.Time{}
	var last string
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		for _, name := range sets.List(pending) {
			crd, found, err := k.getCRD(ctx, name)
			if err != nil {
				last = err.Error()
				continue
			}
			if !found {
				pending.Delete(name)
				continue
			}
			for _, c := range crd.Status.Conditions {
				if c.Type != apiextensionsv1.Terminating || c.Status != apiextensionsv1.ConditionTrue {
					continue
				}
				last = fmt.Sprintf("CRD %s: %s: %s", name, c.Reason, c.Message)
				if c.Reason == "InstanceDeletionFailed" && time.Since(nudged[name]) > 2*time.Second {
					nudged[name] = time.Now()
					patch := fmt.Sprintf(`{"metadata":{"annotations":{"weft.io/uninstall-retry":%q}}}`, time.Now().UTC().Format(time.RFC3339Nano))
					if _, err := k.dynamic.Resource(crdResource).Patch(ctx, name, types.MergePatchType, []byte(patch), metav1.PatchOptions{FieldManager: fieldManager}); err != nil && !apierrors.IsNotFound(err) {
						last = fmt.Sprintf("CRD %s: retry its cleanup: %v", name, err)
					}
				}
			}
		}
		if pending.Len() > 0 && !said {
			said = true
			fmt.Fprintf(progress, "waiting for the apiserver to remove %d CRD(s) and their objects...\n", pending.Len())
		}
		return pending.Len() == 0, nil
	})
	if err != nil {
		return fmt.Errorf("CRDs still there after %s: %v (last: %s); run weft uninstall --delete-crds again to retry", timeout, sets.List(pending), last)
	}
	return nil
}

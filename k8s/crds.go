package k8s

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"sigs.k8s.io/yaml"
)

// CRDs are the CustomResourceDefinitions of the Cilium policy kinds the
// source mirrors, one YAML file each.
//
//go:embed crds/*.yaml
var CRDs embed.FS

var gvrCRD = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}

// InstallCRDs creates (or updates) the CRDs and waits until Kubernetes
// serves them.
func InstallCRDs(ctx context.Context, client dynamic.Interface) error {
	files, err := fs.Glob(CRDs, "crds/*.yaml")
	if err != nil {
		return err
	}
	for _, f := range files {
		b, err := CRDs.ReadFile(f)
		if err != nil {
			return err
		}
		var obj map[string]any
		if err := yaml.Unmarshal(b, &obj); err != nil {
			return fmt.Errorf("parse %s: %w", f, err)
		}
		u := &unstructured.Unstructured{Object: obj}
		crds := client.Resource(gvrCRD)
		have, err := crds.Get(ctx, u.GetName(), metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			_, err = crds.Create(ctx, u, metav1.CreateOptions{})
		case err == nil:
			u.SetResourceVersion(have.GetResourceVersion())
			_, err = crds.Update(ctx, u, metav1.UpdateOptions{})
		}
		if err != nil {
			return fmt.Errorf("install CRD %s: %w", u.GetName(), err)
		}
		if err := waitEstablished(ctx, crds, u.GetName()); err != nil {
			return err
		}
	}
	return nil
}

func waitEstablished(ctx context.Context, crds dynamic.ResourceInterface, name string) error {
	for {
		u, err := crds.Get(ctx, name, metav1.GetOptions{})
		if err == nil {
			conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
			for _, c := range conds {
				m, _ := c.(map[string]any)
				if m["type"] == "Established" && m["status"] == "True" {
					return nil
				}
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for CRD %s to be established: %w", name, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

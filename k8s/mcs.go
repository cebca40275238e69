package k8s

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/weftnet/weft/state/records"
)

// The Multi-Cluster Services API (sigs.k8s.io/mcs-api), as Weft implements
// it (docs/kubernetes.md, "Multi-Cluster Services"):
//
//   - a ServiceExport ns/name makes the Service ns/name of its cluster
//     exported: its record is global (and Exported), so every connected
//     cluster's agents see its backends, as with the annotation;
//   - in every cluster that has namespace ns, the leading apiserver keeps,
//     while ns/name is exported by any cluster of the mesh, a derived
//     Service "derived-<hash>" (no selector, ClusterIP allocated by
//     Kubernetes) and a ServiceImport ns/name whose ClusterSetIP is that
//     ClusterIP;
//   - the mirror maps the derived Service onto the record ns/name: its
//     ClusterIP becomes the record's ClusterSetIP, or, in a cluster without
//     a Service ns/name, a global record of its own with no local backends.
var (
	GVRServiceExport = schema.GroupVersionResource{Group: "multicluster.x-k8s.io", Version: "v1alpha1", Resource: "serviceexports"}
	GVRServiceImport = schema.GroupVersionResource{Group: "multicluster.x-k8s.io", Version: "v1alpha1", Resource: "serviceimports"}
)

// Labels of the objects the importer manages.
const (
	LabelServiceName = "multicluster.kubernetes.io/service-name"
	LabelManagedBy   = "app.kubernetes.io/managed-by"
	managedBy        = "weft-apiserver"
)

// derivedName is the derived Service of an imported ns/name.
func derivedName(name string) string {
	h := sha256.Sum256([]byte(name))
	return "derived-" + hex.EncodeToString(h[:])[:10]
}

// importedName is the service a derived Service stands for ("" for any
// other Service).
func importedName(svc metav1.Object) string {
	if svc.GetLabels()[LabelManagedBy] != managedBy {
		return ""
	}
	return svc.GetLabels()[LabelServiceName]
}

// RemoteExports lists the services other clusters of the mesh export
// (their records with Exported set); the apiserver provides it.
type RemoteExports interface {
	Exported() []records.Service
	// Changed is signalled (without blocking) when the list changed.
	Changed() <-chan struct{}
}

// SetRemoteExports gives the importer the other clusters' exports; without
// it only this cluster's exports are imported.
func (s *Source) SetRemoteExports(r RemoteExports) { s.remoteExports = r }

// imported is one service the clusterset exports.
type imported struct {
	namespace, name string
	ports           []corev1.ServicePort
	clusters        []string
}

// exported reports whether a ServiceExport names ns/name.
func (t *term) exported(ns, name string) bool {
	if t.exports == nil {
		return false
	}
	_, err := t.exports.ByNamespace(ns).Get(name)
	return err == nil
}

// derivedFor is the derived Service standing for ns/name, if any.
func (t *term) derivedFor(ns, name string) *corev1.Service {
	l, _ := t.services.Services(ns).List(labels.SelectorFromSet(labels.Set{LabelManagedBy: managedBy, LabelServiceName: name}))
	for _, d := range l {
		if d.Spec.ClusterIP != "" && d.Spec.ClusterIP != corev1.ClusterIPNone {
			return d
		}
	}
	return nil
}

// mcsRecord completes the record of ns/name with the MCS-API: exported, and
// its ClusterSetIP. svc is nil in a cluster that only imports ns/name; the
// record then stands for the derived Service.
func (t *term) mcsRecord(ns, name string, svc *corev1.Service, rec *records.Service, err error) (*corev1.Service, error) {
	d := t.derivedFor(ns, name)
	if svc == nil {
		if d == nil {
			return nil, errSkip{"not imported"}
		}
		r, err := serviceRecord(t.s.cfg.Cluster, d, nil)
		if err != nil {
			return d, err
		}
		r.Name, r.Global = name, true
		*rec = r
		return d, rec.Validate()
	}
	if err != nil {
		return svc, err
	}
	if t.exported(ns, name) {
		rec.Global, rec.Exported = true, true
	}
	if d != nil && rec.Global {
		rec.ClusterSetIP, _ = netip.ParseAddr(d.Spec.ClusterIP)
	}
	return svc, rec.Validate()
}

// runImporter keeps the derived Services and ServiceImports of this
// cluster in line with what the clusterset exports, until ctx ends.
func (t *term) runImporter(ctx context.Context, changed <-chan struct{}) {
	var remote <-chan struct{}
	if t.s.remoteExports != nil {
		remote = t.s.remoteExports.Changed()
	}
	for {
		if err := t.importOnce(ctx); err != nil && ctx.Err() == nil {
			t.s.st.setError(fmt.Errorf("MCS-API imports: %w", err))
			t.log.Warn("MCS-API imports; retrying", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-changed:
		case <-remote:
		case <-time.After(10 * time.Second):
		}
		// Let a burst of changes settle into one pass.
		select {
		case <-ctx.Done():
			return
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// wanted is every ns/name exported anywhere, with the ports and the
// clusters that export it, for namespaces this cluster has.
func (t *term) wanted() (map[string]*imported, error) {
	out := map[string]*imported{}
	add := func(ns, name, cluster string, ports []corev1.ServicePort) {
		if _, err := t.namespaces.Get(ns); err != nil {
			return // namespace sameness: no namespace, no import
		}
		k := ns + "/" + name
		im := out[k]
		if im == nil {
			im = &imported{namespace: ns, name: name}
			out[k] = im
		}
		im.clusters = append(im.clusters, cluster)
		for _, p := range ports {
			if !slices.ContainsFunc(im.ports, func(q corev1.ServicePort) bool { return q.Port == p.Port && q.Protocol == p.Protocol }) {
				im.ports = append(im.ports, corev1.ServicePort{Name: p.Name, Port: p.Port, Protocol: p.Protocol, TargetPort: intstr.FromInt32(p.Port)})
			}
		}
	}
	if t.exports != nil {
		exps, err := t.exports.List(labels.Everything())
		if err != nil {
			return nil, err
		}
		for _, o := range exps {
			m, ok := meta(o)
			if !ok {
				continue
			}
			svc, err := t.services.Services(m.GetNamespace()).Get(m.GetName())
			if err != nil {
				continue // an export of a Service that does not exist exports nothing
			}
			add(svc.Namespace, svc.Name, t.s.cfg.Cluster, svc.Spec.Ports)
		}
	}
	if t.s.remoteExports != nil {
		for _, r := range t.s.remoteExports.Exported() {
			var ports []corev1.ServicePort
			for _, p := range r.Ports {
				ports = append(ports, corev1.ServicePort{Name: p.Name, Port: int32(p.Port), Protocol: corev1.Protocol(p.Protocol)})
			}
			add(r.Namespace, r.Name, r.Cluster, ports)
		}
	}
	for _, im := range out {
		slices.Sort(im.clusters)
		im.clusters = slices.Compact(im.clusters)
		slices.SortFunc(im.ports, func(a, b corev1.ServicePort) int {
			return cmp.Or(cmp.Compare(a.Port, b.Port), strings.Compare(string(a.Protocol), string(b.Protocol)))
		})
		names := map[string]bool{}
		for i := range im.ports { // a port name may appear once
			if names[im.ports[i].Name] {
				im.ports[i].Name = fmt.Sprintf("%s-%d", strings.ToLower(string(im.ports[i].Protocol)), im.ports[i].Port)
			}
			names[im.ports[i].Name] = true
		}
	}
	return out, nil
}

// importOnce creates, updates and deletes derived Services and
// ServiceImports to match wanted.
func (t *term) importOnce(ctx context.Context) error {
	want, err := t.wanted()
	if err != nil {
		return err
	}
	var errs []error
	for _, k := range slices.Sorted(maps.Keys(want)) {
		if err := t.ensureImport(ctx, want[k]); err != nil {
			errs = append(errs, err)
		}
	}
	// Remove what is no longer exported anywhere.
	derived, err := t.services.List(labels.SelectorFromSet(labels.Set{LabelManagedBy: managedBy}))
	if err != nil {
		return err
	}
	for _, d := range derived {
		if want[d.Namespace+"/"+importedName(d)] == nil {
			err := t.s.client.CoreV1().Services(d.Namespace).Delete(ctx, d.Name, metav1.DeleteOptions{})
			if err != nil && !apierrors.IsNotFound(err) {
				errs = append(errs, err)
			}
		}
	}
	if t.imports != nil {
		ims, err := t.imports.List(labels.SelectorFromSet(labels.Set{LabelManagedBy: managedBy}))
		if err != nil {
			return err
		}
		for _, o := range ims {
			m, _ := meta(o)
			if m != nil && want[m.GetNamespace()+"/"+m.GetName()] == nil {
				err := t.s.dynamic.Resource(GVRServiceImport).Namespace(m.GetNamespace()).Delete(ctx, m.GetName(), metav1.DeleteOptions{})
				if err != nil && !apierrors.IsNotFound(err) {
					errs = append(errs, err)
				}
			}
		}
	}
	return errors.Join(errs...)
}

// ensureImport makes the derived Service and the ServiceImport of im.
func (t *term) ensureImport(ctx context.Context, im *imported) error {
	svcs := t.s.client.CoreV1().Services(im.namespace)
	name := derivedName(im.name)
	// The informers' caches first: a pass over a thousand imports that are
	// right costs no API call.
	d, err := t.services.Services(im.namespace).Get(name)
	switch {
	case apierrors.IsNotFound(err):
		d, err = svcs.Create(ctx, &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: im.namespace,
				Labels:      map[string]string{LabelManagedBy: managedBy, LabelServiceName: im.name},
				Annotations: map[string]string{"service.cilium.io/global": "true"}},
			Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeClusterIP, Ports: im.ports},
		}, metav1.CreateOptions{})
	case err == nil && !samePorts(d.Spec.Ports, im.ports):
		d = d.DeepCopy()
		d.Spec.Ports = im.ports
		d, err = svcs.Update(ctx, d, metav1.UpdateOptions{})
	}
	if apierrors.IsAlreadyExists(err) {
		return nil // created by the last pass, not yet in the cache: its event brings the next pass
	}
	if err != nil {
		return fmt.Errorf("derived Service %s/%s of %s: %w", im.namespace, name, im.name, err)
	}
	var ports []any
	for _, p := range im.ports {
		ports = append(ports, map[string]any{"name": p.Name, "protocol": string(p.Protocol), "port": int64(p.Port)})
	}
	var clusters []any
	for _, c := range im.clusters {
		clusters = append(clusters, map[string]any{"cluster": c})
	}
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": GVRServiceImport.GroupVersion().String(), "kind": "ServiceImport",
		"metadata": map[string]any{"name": im.name, "namespace": im.namespace,
			"labels": map[string]any{LabelManagedBy: managedBy}},
		"spec": map[string]any{"type": "ClusterSetIP", "ips": []any{d.Spec.ClusterIP}, "ports": ports},
	}}
	res := t.s.dynamic.Resource(GVRServiceImport).Namespace(im.namespace)
	var have *unstructured.Unstructured
	o, err := t.imports.ByNamespace(im.namespace).Get(im.name)
	if err == nil {
		cached, ok := o.(*unstructured.Unstructured)
		if !ok {
			return fmt.Errorf("ServiceImport %s/%s: cache holds a %T", im.namespace, im.name, o)
		}
		have = cached.DeepCopy()
	}
	switch {
	case apierrors.IsNotFound(err):
		have, err = res.Create(ctx, u, metav1.CreateOptions{})
	case err == nil && !equalField(have.Object, u.Object, "spec"):
		u.SetResourceVersion(have.GetResourceVersion())
		have, err = res.Update(ctx, u, metav1.UpdateOptions{})
	}
	if apierrors.IsAlreadyExists(err) || apierrors.IsConflict(err) {
		return nil // the cache lags behind the last pass; its event brings the next
	}
	if err != nil {
		return fmt.Errorf("ServiceImport %s/%s: %w", im.namespace, im.name, err)
	}
	if !equalField(have.Object, map[string]any{"status": map[string]any{"clusters": clusters}}, "status") {
		have.Object["status"] = map[string]any{"clusters": clusters}
		if _, err := res.UpdateStatus(ctx, have, metav1.UpdateOptions{}); err != nil && !apierrors.IsConflict(err) {
			return fmt.Errorf("ServiceImport %s/%s status: %w", im.namespace, im.name, err)
		}
	}
	return nil
}

func samePorts(a, b []corev1.ServicePort) bool {
	return slices.EqualFunc(a, b, func(x, y corev1.ServicePort) bool {
		return x.Name == y.Name && x.Port == y.Port && x.Protocol == y.Protocol
	})
}

// equalField compares one top-level field of two unstructured objects.
func equalField(a, b map[string]any, field string) bool {
	return fmt.Sprint(a[field]) == fmt.Sprint(b[field])
}

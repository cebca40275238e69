package k8s_test

import (
	"context"
	"fmt"
	"net/netip"
	"sync"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/weftnet/weft/k8s"
	"github.com/weftnet/weft/state/records"
	"github.com/weftnet/weft/state/statetest"
)

// staticExports stands for the other clusters' exports (the apiserver
// reads them from their stores; see clustermesh/apiserver).
type staticExports struct {
	mu      sync.Mutex
	svcs    []records.Service
	changed chan struct{}
}

func (s *staticExports) Exported() []records.Service {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.svcs
}
func (s *staticExports) Changed() <-chan struct{} { return s.changed }

func (s *staticExports) set(svcs []records.Service) {
	s.mu.Lock()
	s.svcs = svcs
	s.mu.Unlock()
	s.changed <- struct{}{}
}

// TestMCSImports: a ServiceExport makes its Service's record global and
// exported; the Service exported here and one exported only by another
// cluster each get a derived Service and a ServiceImport whose ClusterSetIP
// the store records carry; removing the export withdraws the import.
func TestMCSImports(t *testing.T) {
	c, store := setup(t)
	ctx := context.Background()
	if _, err := c.Client.CoreV1().Namespaces().Create(ctx, namespace("mcs", nil), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Client.CoreV1().Services("mcs").Create(ctx, service("mcs", "web", nil), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	export := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "multicluster.x-k8s.io/v1alpha1", "kind": "ServiceExport",
		"metadata": map[string]any{"name": "web", "namespace": "mcs"}}}
	exports := c.Dynamic.Resource(k8s.GVRServiceExport).Namespace("mcs")
	if _, err := exports.Create(ctx, export, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	remote := &staticExports{changed: make(chan struct{}, 1), svcs: []records.Service{{
		Cluster: "c2", Namespace: "mcs", Name: "other", Type: records.ServiceClusterIP, Global: true, Exported: true,
		Frontends: []netip.Addr{netip.MustParseAddr("10.96.9.9")},
		Ports:     []records.ServicePort{{Name: "dns", Port: 53, TargetPort: 53, Protocol: records.ProtoUDP}},
	}}}
	startSource(t, c, store, "a", func(s *k8s.Source) { s.SetRemoteExports(remote) })

	imported := func(name string) netip.Addr {
		t.Helper()
		var ip netip.Addr
		statetest.Eventually(t, timeout, "ServiceImport mcs/"+name, func() error {
			u, err := c.Dynamic.Resource(k8s.GVRServiceImport).Namespace("mcs").Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return err
			}
			ips, _, _ := unstructured.NestedStringSlice(u.Object, "spec", "ips")
			if len(ips) != 1 {
				return fmt.Errorf("spec.ips %v", ips)
			}
			ip, err = netip.ParseAddr(ips[0])
			return err
		})
		return ip
	}
	webIP, otherIP := imported("web"), imported("other")
	waitRecord(t, store, keys.Service(cluster, "mcs", "web"), records.Keys.DecodeService, func(r records.Service) error {
		if !r.Exported || !r.Global || r.ClusterSetIP != webIP {
			return fmt.Errorf("exported %v, global %v, clusterSetIP %v (want %v)", r.Exported, r.Global, r.ClusterSetIP, webIP)
		}
		return nil
	})
	waitRecord(t, store, keys.Service(cluster, "mcs", "other"), records.Keys.DecodeService, func(r records.Service) error {
		if r.Exported || !r.Global || len(r.Frontends) != 1 || r.Frontends[0] != otherIP || r.Ports[0].Port != 53 {
			return fmt.Errorf("imported-only record %+v, want global with frontend %v on 53", r, otherIP)
		}
		return nil
	})

	if err := exports.Delete(ctx, "web", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitRecord(t, store, keys.Service(cluster, "mcs", "web"), records.Keys.DecodeService, func(r records.Service) error {
		if r.Exported || r.Global || r.ClusterSetIP.IsValid() {
			return fmt.Errorf("still exported: %+v", r)
		}
		return nil
	})
	statetest.Eventually(t, timeout, "ServiceImport and derived Service of web removed", func() error {
		if _, err := c.Dynamic.Resource(k8s.GVRServiceImport).Namespace("mcs").Get(ctx, "web", metav1.GetOptions{}); err == nil {
			return fmt.Errorf("ServiceImport mcs/web still there")
		}
		l, err := c.Client.CoreV1().Services("mcs").List(ctx, metav1.ListOptions{LabelSelector: labels.Set{k8s.LabelServiceName: "web"}.String()})
		if err != nil || len(l.Items) > 0 {
			return fmt.Errorf("derived Services of web: %d (%v)", len(l.Items), err)
		}
		return nil
	})
	remote.set(nil)
	waitGone(t, store, keys.Service(cluster, "mcs", "other"))
}

package k8s_test

import (
	"context"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"

	"github.com/weftnet/weft/k8s"
	"github.com/weftnet/weft/k8s/k8stest"
	"github.com/weftnet/weft/kvstore"
	"github.com/weftnet/weft/kvstore/kvstoretest"
	"github.com/weftnet/weft/state/records"
	"github.com/weftnet/weft/state/statetest"
)

// setup starts Kubernetes with the Cilium CRDs and an embedded etcd store.
func setup(t *testing.T) (*k8stest.Cluster, kvstore.Client) {
	t.Helper()
	c := k8stest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := k8s.InstallCRDs(ctx, c.Dynamic); err != nil {
		t.Fatalf("install CRDs: %v", err)
	}
	store := kvstoretest.StartEtcd(t).NewClient(t, statetest.Unlimited)
	return c, store
}

func namespace(name string, labels map[string]string) *corev1.Namespace {
	return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}
}

func pod(ns, name string, labels map[string]string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: labels},
		Spec:       corev1.PodSpec{NodeName: "n1", Containers: []corev1.Container{{Name: "c", Image: "echo"}}},
	}
}

func service(ns, name string, annotations map[string]string) *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Annotations: annotations},
		Spec: corev1.ServiceSpec{
			Selector: map[string]string{"app": name},
			Ports:    []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromInt32(8080), Protocol: corev1.ProtocolTCP}},
		},
	}
}

func endpointSlice(ns, name, svc string, ips ...string) *discoveryv1.EndpointSlice {
	sl := &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Namespace: ns, Name: name, Labels: map[string]string{discoveryv1.LabelServiceName: svc}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: ptr.To("http"), Port: ptr.To[int32](8080), Protocol: ptr.To(corev1.ProtocolTCP)}},
	}
	for i, ip := range ips {
		sl.Endpoints = append(sl.Endpoints, discoveryv1.Endpoint{
			Addresses: []string{ip}, NodeName: ptr.To("n1"), Zone: ptr.To("z1"),
			Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(i == 0), Serving: ptr.To(true), Terminating: ptr.To(i != 0)},
		})
	}
	return sl
}

func netpol(ns, name string, port int32) *networkingv1.NetworkPolicy {
	return &networkingv1.NetworkPolicy{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: networkingv1.NetworkPolicySpec{
			PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
			Ingress: []networkingv1.NetworkPolicyIngressRule{{
				From:  []networkingv1.NetworkPolicyPeer{{PodSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "client"}}}},
				Ports: []networkingv1.NetworkPolicyPort{{Port: ptr.To(intstr.FromInt32(port))}},
			}},
		},
	}
}

// cilium parses a CiliumNetworkPolicy or CiliumClusterwideNetworkPolicy.
func cilium(t *testing.T, doc string) *unstructured.Unstructured {
	t.Helper()
	var m map[string]any
	if err := yaml.Unmarshal([]byte(doc), &m); err != nil {
		t.Fatal(err)
	}
	return &unstructured.Unstructured{Object: m}
}

const cnpDoc = `apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: %s
  namespace: dev
spec:
  endpointSelector:
    matchLabels:
      app: web
  ingress:
  - fromEndpoints:
    - matchLabels:
        app: client
    toPorts:
    - ports:
      - port: "%d"
        protocol: TCP
`

const ccnpDoc = `apiVersion: cilium.io/v2
kind: CiliumClusterwideNetworkPolicy
metadata:
  name: cw
spec:
  endpointSelector: {}
  egress:
  - toEntities: [cluster]
`

// TestMirror: create, update and delete of every kind appears, changes
// and vanishes in the store.
func TestMirror(t *testing.T) {
	c, store := setup(t)
	ctx := statetest.Context(t, 5*time.Minute)
	cs := c.Client
	src := startSynced(t, c, store)

	t.Run("namespace", func(t *testing.T) {
		if _, err := cs.CoreV1().Namespaces().Create(ctx, namespace("dev", map[string]string{"team": "a"}), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		key := keys.Namespace(cluster, "dev")
		waitRecord(t, store, key, records.Keys.DecodeNamespace, func(n records.Namespace) error {
			return wantEqual(n.Labels, map[string]string{"team": "a", "kubernetes.io/metadata.name": "dev"})
		})
		ns, _ := cs.CoreV1().Namespaces().Get(ctx, "dev", metav1.GetOptions{})
		ns.Labels = map[string]string{"team": "b", "env": "dev"}
		if _, err := cs.CoreV1().Namespaces().Update(ctx, ns, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		waitRecord(t, store, key, records.Keys.DecodeNamespace, func(n records.Namespace) error {
			return wantEqual(n.Labels, map[string]string{"team": "b", "env": "dev", "kubernetes.io/metadata.name": "dev"})
		})
		if _, err := cs.CoreV1().Namespaces().Create(ctx, namespace("gone", nil), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		waitRecord(t, store, keys.Namespace(cluster, "gone"), records.Keys.DecodeNamespace, func(records.Namespace) error { return nil })
		deleteNamespace(t, c, "gone")
		waitGone(t, store, keys.Namespace(cluster, "gone"))
	})

	t.Run("pod", func(t *testing.T) {
		p, err := cs.CoreV1().Pods("dev").Create(ctx, pod("dev", "web-0", map[string]string{"app": "web"}), metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		key := keys.Pod(cluster, "dev", "web-0")
		waitRecord(t, store, key, records.Keys.DecodePod, func(r records.Pod) error {
			if r.Node != "n1" || r.Ready || len(r.IPs) != 0 || r.Source != k8s.SourceKubernetes {
				return fmt.Errorf("record %+v: want node n1, not ready, no address", r)
			}
			return wantEqual(r.Labels, map[string]string{"app": "web"})
		})
		p.Status = corev1.PodStatus{Phase: corev1.PodRunning, PodIP: "10.100.1.5", PodIPs: []corev1.PodIP{{IP: "10.100.1.5"}},
			Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}}
		if p, err = cs.CoreV1().Pods("dev").UpdateStatus(ctx, p, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		p.Labels["version"] = "2"
		if _, err = cs.CoreV1().Pods("dev").Update(ctx, p, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		waitRecord(t, store, key, records.Keys.DecodePod, func(r records.Pod) error {
			if !r.Ready || r.Phase != records.PodRunning || !slices.Equal(r.IPs, []netip.Addr{netip.MustParseAddr("10.100.1.5")}) {
				return fmt.Errorf("record %+v: want running, ready, 10.100.1.5", r)
			}
			return wantEqual(r.Labels, map[string]string{"app": "web", "version": "2"})
		})
		deletePod(t, c, "dev", "web-0")
		waitGone(t, store, key)
	})

	t.Run("service and endpointslices", func(t *testing.T) {
		svc, err := cs.CoreV1().Services("dev").Create(ctx, service("dev", "web", nil), metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		key := keys.Service(cluster, "dev", "web")
		waitRecord(t, store, key, records.Keys.DecodeService, func(r records.Service) error {
			if len(r.Frontends) != 1 || r.Frontends[0].String() != svc.Spec.ClusterIP || r.Global {
				return fmt.Errorf("frontends %v, global %v: want [%s], not global", r.Frontends, r.Global, svc.Spec.ClusterIP)
			}
			// No EndpointSlice yet: agents select pods themselves.
			return wantEqual(r.Selector, map[string]string{"app": "web"})
		})
		if _, err := cs.DiscoveryV1().EndpointSlices("dev").Create(ctx, endpointSlice("dev", "web-1", "web", "10.100.1.5", "10.100.2.6"), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		waitRecord(t, store, key, records.Keys.DecodeService, func(r records.Service) error {
			want := []records.Backend{
				{IP: netip.MustParseAddr("10.100.1.5"), Port: 8080, Protocol: "TCP", PortName: "http", Node: "n1", Ready: true, Serving: true, Zone: "z1"},
				{IP: netip.MustParseAddr("10.100.2.6"), Port: 8080, Protocol: "TCP", PortName: "http", Node: "n1", Serving: true, Terminating: true, Zone: "z1"},
			}
			if len(r.Selector) != 0 || !slices.Equal(r.Backends, want) {
				return fmt.Errorf("selector %v, backends %+v: want none, %+v", r.Selector, r.Backends, want)
			}
			return nil
		})
		svc.Annotations = map[string]string{"service.cilium.io/global": "true", "service.cilium.io/affinity": "local", "service.cilium.io/shared": "false"}
		svc.Spec.SessionAffinity = corev1.ServiceAffinityClientIP
		if _, err := cs.CoreV1().Services("dev").Update(ctx, svc, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		waitRecord(t, store, key, records.Keys.DecodeService, func(r records.Service) error {
			if !r.Global || r.IsShared() || r.Affinity != "local" || r.SessionAffinity != records.AffinityClientIP {
				return fmt.Errorf("record %+v: want global, not shared, affinity local, ClientIP", r)
			}
			return nil
		})
		if err := cs.DiscoveryV1().EndpointSlices("dev").Delete(ctx, "web-1", metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		waitRecord(t, store, key, records.Keys.DecodeService, func(r records.Service) error {
			if len(r.Backends) != 0 {
				return fmt.Errorf("backends %v after the slice was deleted", r.Backends)
			}
			return nil
		})
		if err := cs.CoreV1().Services("dev").Delete(ctx, "web", metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		waitGone(t, store, key)
	})

	t.Run("policies", func(t *testing.T) {
		np, err := cs.NetworkingV1().NetworkPolicies("dev").Create(ctx, netpol("dev", "allow-client", 80), metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		npKey := keys.Policy("dev", "allow-client")
		waitRecord(t, store, npKey, records.Keys.DecodePolicyRef, func(r records.PolicyRef) error {
			if r.Format != records.PolicyFormatKubernetes || !contains(r.Document, "port: 80") {
				return fmt.Errorf("record %+v: want a kubernetes document with port 80", r)
			}
			return nil
		})
		np.Spec.Ingress[0].Ports[0].Port = ptr.To(intstr.FromInt32(81))
		if _, err := cs.NetworkingV1().NetworkPolicies("dev").Update(ctx, np, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		waitRecord(t, store, npKey, records.Keys.DecodePolicyRef, func(r records.PolicyRef) error {
			if !contains(r.Document, "port: 81") {
				return fmt.Errorf("document not updated:\n%s", r.Document)
			}
			return nil
		})

		cnps := c.Dynamic.Resource(k8s.GVRCiliumNetworkPolicy).Namespace("dev")
		cnp, err := cnps.Create(ctx, cilium(t, fmt.Sprintf(cnpDoc, "web", 80)), metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		cnpKey := keys.Policy("dev", "web")
		waitRecord(t, store, cnpKey, records.Keys.DecodePolicyRef, func(r records.PolicyRef) error {
			if r.Format != records.PolicyFormatCilium || !contains(r.Document, `port: "80"`) {
				return fmt.Errorf("record %+v: want a cilium document with port 80", r)
			}
			return nil
		})
		upd := cilium(t, fmt.Sprintf(cnpDoc, "web", 8080))
		upd.SetResourceVersion(cnp.GetResourceVersion())
		if _, err := cnps.Update(ctx, upd, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		waitRecord(t, store, cnpKey, records.Keys.DecodePolicyRef, func(r records.PolicyRef) error {
			if !contains(r.Document, `port: "8080"`) {
				return fmt.Errorf("document not updated:\n%s", r.Document)
			}
			return nil
		})

		ccnps := c.Dynamic.Resource(k8s.GVRCiliumClusterwideNetworkPolicy)
		if _, err := ccnps.Create(ctx, cilium(t, ccnpDoc), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		ccnpKey := keys.Policy(records.PolicyClusterwide, "cw")
		waitRecord(t, store, ccnpKey, records.Keys.DecodePolicyRef, func(r records.PolicyRef) error {
			if r.Format != records.PolicyFormatCilium || !contains(r.Document, "CiliumClusterwideNetworkPolicy") {
				return fmt.Errorf("record %+v: want the clusterwide document", r)
			}
			return nil
		})

		for _, del := range []func() error{
			func() error {
				return cs.NetworkingV1().NetworkPolicies("dev").Delete(ctx, "allow-client", metav1.DeleteOptions{})
			},
			func() error { return cnps.Delete(ctx, "web", metav1.DeleteOptions{}) },
			func() error { return ccnps.Delete(ctx, "cw", metav1.DeleteOptions{}) },
		} {
			if err := del(); err != nil {
				t.Fatal(err)
			}
		}
		waitGone(t, store, npKey)
		waitGone(t, store, cnpKey)
		waitGone(t, store, ccnpKey)
	})

	if s := src.Status(); !s.Leader || !s.Kinds[records.KindK8sServices].Synced {
		t.Errorf("status %+v: want leader, services synced", s)
	}
}

func wantEqual(got, want map[string]string) error {
	if !maps.Equal(got, want) {
		return fmt.Errorf("labels %v, want %v", got, want)
	}
	return nil
}

// deletePod deletes at once (no kubelet confirms a graceful deletion).
func deletePod(t *testing.T, c *k8stest.Cluster, ns, name string) {
	t.Helper()
	if err := c.Client.CoreV1().Pods(ns).Delete(context.Background(), name, metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)}); err != nil {
		t.Fatalf("delete pod %s/%s: %v", ns, name, err)
	}
}

// deleteNamespace deletes and finalizes a namespace (no namespace
// controller runs to do it).
func deleteNamespace(t *testing.T, c *k8stest.Cluster, name string) {
	t.Helper()
	ctx := context.Background()
	if err := c.Client.CoreV1().Namespaces().Delete(ctx, name, metav1.DeleteOptions{}); err != nil {
		t.Fatalf("delete namespace %s: %v", name, err)
	}
	ns, err := c.Client.CoreV1().Namespaces().Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return
	}
	ns.Spec.Finalizers = nil
	if _, err := c.Client.CoreV1().Namespaces().Finalize(ctx, ns, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("finalize namespace %s: %v", name, err)
	}
}

package k8s_test

import (
	"context"
	"fmt"
	"net/netip"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/weftnet/weft/internal/testcert"
	"github.com/weftnet/weft/k8s"
	"github.com/weftnet/weft/k8s/k8stest"
	"github.com/weftnet/weft/kvstore/kvstoretest"
	pingress "github.com/weftnet/weft/proxy/ingress"
	"github.com/weftnet/weft/state/records"
	"github.com/weftnet/weft/state/statetest"
)

func ingressOf(name, class string, tlsSecret string, backend networkingv1.IngressBackend) *networkingv1.Ingress {
	ing := &networkingv1.Ingress{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name},
		Spec: networkingv1.IngressSpec{IngressClassName: ptr.To(class), Rules: []networkingv1.IngressRule{{
			Host: "shop.example.com",
			IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{Paths: []networkingv1.HTTPIngressPath{
				{Path: "/foo", PathType: ptr.To(networkingv1.PathTypePrefix), Backend: backend},
			}}},
		}}},
	}
	if tlsSecret != "" {
		ing.Spec.TLS = []networkingv1.IngressTLS{{Hosts: []string{"shop.example.com"}, SecretName: tlsSecret}}
	}
	return ing
}

// TestMirrorIngresses (weft-apiserver --k8s-ingresses): an Ingress of
// class weft and the kubernetes.io/tls Secret it names appear in the
// store as the records weft ingress apply writes, and its status gets the
// nodes' addresses; an Ingress of another class and a Secret no Ingress
// names are not mirrored; the status follows a node that joins; an
// Ingress Weft cannot serve is reported;
// deleting the Ingress removes both records.
func TestMirrorIngresses(t *testing.T) {
	c := k8stest.Start(t)
	store := kvstoretest.StartEtcd(t).NewClient(t, statetest.Unlimited)
	ctx := statetest.Context(t, 5*time.Minute)
	cs := c.Client
	node := netip.MustParseAddr("192.168.1.1")
	v, err := records.Encode(keys.Node(cluster, "n1"), &records.Node{Name: "n1", Cluster: cluster, ClusterID: 1, Underlay: []netip.Addr{node}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.Update(ctx, keys.Node(cluster, "n1"), v); err != nil {
		t.Fatal(err)
	}

	cfg := k8s.DefaultConfig()
	cfg.Enabled, cfg.Cluster, cfg.Identity, cfg.Ingresses = true, cluster, "a", true
	cfg.LeaseDuration, cfg.RenewDeadline, cfg.RetryPeriod = 4*time.Second, 3*time.Second, 500*time.Millisecond
	src, err := k8s.New(cfg, c.Config, store, statetest.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); src.Run(runCtx) }()
	t.Cleanup(func() { cancel(); <-done })
	for _, kind := range []string{records.KindK8sIngresses, records.KindK8sIngressSecrets} {
		statetest.Eventually(t, timeout, "synced marker "+kind, func() error {
			_, err := store.Get(ctx, keys.Synced(cluster, kind))
			return err
		})
	}

	certPEM, keyPEM, _ := testcert.SelfSigned(t, "shop.example.com")
	for _, s := range []*corev1.Secret{
		{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "shop-tls"}, Type: corev1.SecretTypeTLS,
			Data: map[string][]byte{corev1.TLSCertKey: certPEM, corev1.TLSPrivateKeyKey: keyPEM}},
		{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "unnamed-tls"}, Type: corev1.SecretTypeTLS,
			Data: map[string][]byte{corev1.TLSCertKey: certPEM, corev1.TLSPrivateKeyKey: keyPEM}},
	} {
		if _, err := cs.CoreV1().Secrets("default").Create(ctx, s, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	svc := networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{Name: "foo-app", Port: networkingv1.ServiceBackendPort{Number: 5678}}}
	res := networkingv1.IngressBackend{Resource: &corev1.TypedLocalObjectReference{APIGroup: ptr.To("example.com"), Kind: "Bucket", Name: "b"}}
	for _, ing := range []*networkingv1.Ingress{
		ingressOf("shop", "weft", "shop-tls", svc),
		ingressOf("theirs", "nginx", "", svc),
		ingressOf("bucket", "weft", "", res),
	} {
		if _, err := cs.NetworkingV1().Ingresses("default").Create(ctx, ing, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}

	key := keys.Ingress(cluster, "default", "shop")
	waitRecord(t, store, key, records.Keys.DecodeIngress, func(r records.Ingress) error {
		ing, err := pingress.FromDocument(r.Document)
		if err != nil || r.Source != k8s.SourceKubernetes || len(ing.Spec.Rules) != 1 || ing.Spec.Rules[0].HTTP.Paths[0].Path != "/foo" {
			return fmt.Errorf("record %+v: %v", r, err)
		}
		return pingress.Check(ing)
	})
	waitRecord(t, store, keys.IngressSecret(cluster, "default", "shop-tls"), records.Keys.DecodeIngressSecret, func(r records.IngressSecret) error {
		if r.CertPEM != string(certPEM) || r.Source != k8s.SourceKubernetes {
			return fmt.Errorf("record %+v", r)
		}
		return nil
	})
	statetest.Eventually(t, timeout, "status.loadBalancer of Ingress default/shop", func() error {
		ing, err := cs.NetworkingV1().Ingresses("default").Get(ctx, "shop", metav1.GetOptions{})
		if err != nil {
			return err
		}
		if lb := ing.Status.LoadBalancer.Ingress; len(lb) != 1 || lb[0].IP != node.String() {
			return fmt.Errorf("status %+v, want the node address %s", lb, node)
		}
		return nil
	})
	// A node joining shows in the status.
	node2 := netip.MustParseAddr("192.168.1.2")
	v, err = records.Encode(keys.Node(cluster, "n2"), &records.Node{Name: "n2", Cluster: cluster, ClusterID: 1, Underlay: []netip.Addr{node2}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.Update(ctx, keys.Node(cluster, "n2"), v); err != nil {
		t.Fatal(err)
	}
	statetest.Eventually(t, timeout, "status.loadBalancer of Ingress default/shop with the node that joined", func() error {
		ing, err := cs.NetworkingV1().Ingresses("default").Get(ctx, "shop", metav1.GetOptions{})
		if err != nil {
			return err
		}
		if lb := ing.Status.LoadBalancer.Ingress; len(lb) != 2 || lb[0].IP != node.String() || lb[1].IP != node2.String() {
			return fmt.Errorf("status %+v, want %s and %s", lb, node, node2)
		}
		return nil
	})
	waitProblem(t, c, src, "Ingress", "default", "bucket", "resource backends")
	for _, k := range []string{keys.Ingress(cluster, "default", "theirs"), keys.Ingress(cluster, "default", "bucket"), keys.IngressSecret(cluster, "default", "unnamed-tls")} {
		if _, err := store.Get(ctx, k); err == nil {
			t.Errorf("%s is in the store; it should not be mirrored", k)
		}
	}

	if err := cs.NetworkingV1().Ingresses("default").Delete(ctx, "shop", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitGone(t, store, key)
	waitGone(t, store, keys.IngressSecret(cluster, "default", "shop-tls"))
}

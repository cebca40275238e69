package apiserver_test

import (
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/weftnet/weft/api/adminapi"
	"github.com/weftnet/weft/clustermesh/apiserver"
	"github.com/weftnet/weft/clustermesh/apiserver/apiservertest"
	"github.com/weftnet/weft/k8s/k8stest"
	"github.com/weftnet/weft/state/records"
	"github.com/weftnet/weft/state/statetest"
)

// TestKubernetesSource: weft-apiserver --kubeconfig mirrors a Kubernetes
// Service into the cluster store and on into the served store, where
// remote clusters read it after the services canary; the admin API shows
// the source leading, synced, and the object it refused.
func TestKubernetesSource(t *testing.T) {
	kube := k8stest.Start(t)
	ctx := statetest.Context(t, 3*time.Minute)
	c := apiservertest.Start(t, "c1", 1, apiservertest.Options{Modify: func(cfg *apiserver.Config) {
		cfg.Kubernetes.Kubeconfig = kube.Kubeconfig()
		cfg.Kubernetes.LeaseDuration, cfg.Kubernetes.RenewDeadline, cfg.Kubernetes.RetryPeriod = 4*time.Second, 3*time.Second, 500*time.Millisecond
	}})
	svc := func(name, affinity string) *corev1.Service {
		return &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: map[string]string{"service.cilium.io/global": "true", "service.cilium.io/affinity": affinity}},
			Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromInt32(8080)}}},
		}
	}
	for _, s := range []*corev1.Service{svc("web", "local"), svc("bad", "closest")} {
		if _, err := kube.Client.CoreV1().Services("default").Create(ctx, s, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	cert, key := remoteCreds(t, c, "c2")
	remote := servedWith(t, c.RemoteConfig(cert, key))
	k := records.NewKeys(remote.Prefix())
	statetest.Eventually(t, time.Minute, "the remote reads the global service and the services canary", func() error {
		if _, err := remote.Get(ctx, k.Synced("c1", records.KindServices)); err != nil {
			return err
		}
		kv, err := remote.Get(ctx, k.Service("c1", "default", "web"))
		if err != nil {
			return err
		}
		r, err := k.DecodeService(kv.Key, kv.Value)
		if err != nil || !r.Global || r.Affinity != "local" {
			return fmt.Errorf("record %+v, %v: want global, affinity local", r, err)
		}
		return nil
	})
	admin := c.Admin(t)
	statetest.Eventually(t, time.Minute, "KubernetesStatus", func() error {
		st, err := admin.KubernetesStatus(ctx, &adminapi.KubernetesStatusRequest{})
		if err != nil {
			return err
		}
		if !st.Enabled || !st.Leader || len(st.Kinds) != 4 {
			return fmt.Errorf("status %v: want enabled, leader, 4 kinds", st)
		}
		for _, kind := range st.Kinds {
			if !kind.Synced {
				return fmt.Errorf("kind %s not synced", kind.Kind)
			}
		}
		if len(st.Problems) != 1 || st.Problems[0].Name != "bad" || st.Problems[0].Kind != "Service" {
			return fmt.Errorf("problems %v: want the Service default/bad", st.Problems)
		}
		return nil
	})
}

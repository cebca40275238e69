package k8stest_test

import (
	"context"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/weftnet/weft/k8s/k8stest"
)

// TestStart proves the control plane serves the API with the admin token,
// survives a kube-apiserver restart, and keeps objects in its etcd.
func TestStart(t *testing.T) {
	c := k8stest.Start(t)
	ctx := context.Background()
	v, err := c.Client.Discovery().ServerVersion()
	if err != nil {
		t.Fatalf("server version: %v", err)
	}
	if v.GitVersion != "v1.35.4" {
		t.Errorf("server version %q, want v1.35.4", v.GitVersion)
	}
	if _, err := c.Client.CoreV1().Namespaces().Get(ctx, "default", metav1.GetOptions{}); err != nil {
		t.Fatalf("get namespace default: %v", err)
	}
	c.StopAPIServer()
	if err := c.StartAPIServer(ctx); err != nil {
		t.Fatalf("restart kube-apiserver: %v", err)
	}
	if _, err := c.Client.CoreV1().Namespaces().Get(ctx, "kube-system", metav1.GetOptions{}); err != nil {
		t.Fatalf("get namespace kube-system after restart: %v", err)
	}
}

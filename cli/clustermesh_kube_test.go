package cli

import (
	"context"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/weftnet/weft/k8s/k8stest"
)

// TestClusterMeshContextRefusals: `weft clustermesh … --context` against a
// real kube-apiserver says what is missing and what to run, and changes
// nothing: Weft not installed, flags of a standalone apiserver, cluster
// names given, no destination, clustermesh not enabled, a LoadBalancer
// without an address, and a destination that is the same cluster.
// (e2e.TestClusterMeshByContext connects two clusters this way.)
func TestClusterMeshContextRefusals(t *testing.T) {
	c := k8stest.Start(t)
	ctx := context.Background()
	kc := "--kubeconfig=" + c.Kubeconfig()
	refused := func(what string, args []string, want ...string) {
		t.Helper()
		_, _, err := runWeft(t, args...)
		if err == nil {
			t.Fatalf("%s: succeeded; want a refusal", what)
		}
		wantContains(t, what, err.Error(), want...)
	}

	refused("enable before install", []string{"clustermesh", "enable", kc},
		"Weft is not installed in namespace weft-system (no ConfigMap weft-config)", "run `weft install` first")
	refused("enable with a standalone flag", []string{"clustermesh", "enable", kc, "--cluster-id=3", "--kvstore=consul"},
		"--cluster-id, --kvstore configure a standalone apiserver", "weft install --context")
	refused("enable naming a cluster", []string{"clustermesh", "enable", kc, "c1"}, `give no cluster name (got "c1")`)
	refused("connect without a destination", []string{"clustermesh", "connect", kc}, "--destination-context")
	refused("connect naming clusters", []string{"clustermesh", "connect", kc, "--destination-context=x", "c1", "c2"}, "give no cluster names")
	refused("status naming clusters", []string{"clustermesh", "status", kc, "c1"}, "give no cluster names")

	if _, _, err := runWeft(t, "install", kc, testEndpoints, "--cluster-name=east", "--wait=false"); err != nil {
		t.Fatal(err)
	}
	refused("enable with no LoadBalancer address", []string{"clustermesh", "enable", kc, "--wait-timeout=2s"},
		"Service weft-system/weft-clustermesh (type LoadBalancer) has no address after 2s", "apiserver.service.type=NodePort")
	if _, err := c.Client.CoreV1().Secrets("weft-system").Get(ctx, "weft-clustermesh", metav1.GetOptions{}); err == nil {
		t.Fatal("a refused enable created the clustermesh Secret")
	}
	refused("connect before enable", []string{"clustermesh", "connect", kc, "--destination-kubeconfig=" + c.Kubeconfig()},
		"clustermesh is not enabled for cluster east (no Secret weft-system/weft-clustermesh)", "run `weft clustermesh enable` first")

	if _, _, err := runWeft(t, "install", kc, testEndpoints, "--cluster-name=east", "--wait=false", "--set=apiserver.service.type=ClusterIP"); err != nil {
		t.Fatal(err)
	}
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "weft-clustermesh", Namespace: "weft-system"}, Data: map[string][]byte{"ca.crt": []byte("x")}}
	if _, err := c.Client.CoreV1().Secrets("weft-system").Create(ctx, s, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	refused("connect to itself", []string{"clustermesh", "connect", kc, "--destination-kubeconfig=" + c.Kubeconfig()},
		"the current kube context and the current kube context are the same cluster (east)")
}

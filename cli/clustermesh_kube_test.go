package cli

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"maps"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/weftnet/weft/k8s/k8stest"
)

// TestClusterMeshContextRefusals: `weft clustermesh … --context` against a
// real kube-apiserver says what is missing and what to run, and changes
// nothing: Weft not installed, flags of a standalone apiserver, cluster
// names given, no destination, a LoadBalancer without an address (the
// Secret install created stays as it was), no Secret, and a destination
// that is the same cluster. install creates the Secret once and keeps it.
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

	// install gives the apiserver the Secret it waits for; a second
	// install keeps it (it holds the CA).
	out, _, err := runWeft(t, "install", kc, testEndpoints, "--cluster-name=east", "--wait=false")
	if err != nil {
		t.Fatal(err)
	}
	wantContains(t, "install", out, "weft-system/secret/weft-clustermesh created (the cluster's CA and certificates; `weft clustermesh enable` adds")
	secret := func() map[string][]byte {
		t.Helper()
		s, err := c.Client.CoreV1().Secrets("weft-system").Get(ctx, "weft-clustermesh", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return s.Data
	}
	first := secret()
	if len(first["ca.key"]) == 0 || len(first["admin.crt"]) == 0 || len(first["remote-ca.key"]) == 0 {
		t.Fatalf("the Secret install created lacks the CA, remote CA or admin certificate: keys %v", slices.Collect(maps.Keys(first)))
	}
	out, _, err = runWeft(t, "install", kc, testEndpoints, "--cluster-name=east", "--wait=false")
	if err != nil {
		t.Fatal(err)
	}
	wantContains(t, "install again", out, "weft-system/secret/weft-clustermesh kept (the cluster's CA)")
	refused("enable with no LoadBalancer address", []string{"clustermesh", "enable", kc, "--wait-timeout=2s"},
		"Service weft-system/weft-clustermesh (type LoadBalancer) has no address after 2s", "apiserver.service.type=NodePort")
	if !maps.EqualFunc(first, secret(), bytes.Equal) {
		t.Fatal("a refused enable or a second install changed the clustermesh Secret")
	}
	if err := c.Client.CoreV1().Secrets("weft-system").Delete(ctx, "weft-clustermesh", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	refused("connect without the Secret", []string{"clustermesh", "connect", kc, "--destination-kubeconfig=" + c.Kubeconfig()},
		"clustermesh is not enabled for cluster east (no Secret weft-system/weft-clustermesh)", "run `weft clustermesh enable` first")

	if _, _, err := runWeft(t, "install", kc, testEndpoints, "--cluster-name=east", "--wait=false", "--set=apiserver.service.type=ClusterIP"); err != nil {
		t.Fatal(err)
	}
	// (install made the Secret again: it was deleted above)
	refused("connect to itself", []string{"clustermesh", "connect", kc, "--destination-kubeconfig=" + c.Kubeconfig()},
		"the current kube context and the current kube context are the same cluster (east)")
}

// TestClusterMeshServiceAddresses: remote clusters and the CLI are told
// the addresses the Service weft-clustermesh has from outside the cluster:
// a NodePort's node addresses with the node ports, a LoadBalancer's
// ingress addresses with the Service ports, a ClusterIP's cluster address.
func TestClusterMeshServiceAddresses(t *testing.T) {
	c := k8stest.Start(t)
	ctx := context.Background()
	kc := "--kubeconfig=" + c.Kubeconfig()
	if _, _, err := runWeft(t, "install", kc, testEndpoints, "--cluster-name=east", "--wait=false", "--set=apiserver.service.type=NodePort"); err != nil {
		t.Fatal(err)
	}
	for i, ip := range []string{"10.0.0.11", "10.0.0.12"} {
		n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("n%d", i+1)}}
		n, err := c.Client.CoreV1().Nodes().Create(ctx, n, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		n.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: ip}, {Type: corev1.NodeHostName, Address: n.Name}}
		if _, err := c.Client.CoreV1().Nodes().UpdateStatus(ctx, n, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	kf := kubeFlags{kubeconfig: c.Kubeconfig(), namespace: "weft-system"}
	kcl, err := openKubeCluster(ctx, kf)
	if err != nil {
		t.Fatal(err)
	}
	if kcl.name != "east" || kcl.id != 1 || kcl.secret != "weft-clustermesh" {
		t.Errorf("the install read back as %s id %d, Secret %s", kcl.name, kcl.id, kcl.secret)
	}
	svc, err := c.Client.CoreV1().Services("weft-system").Get(ctx, "weft-clustermesh", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	nodePort := map[string]int32{}
	for _, p := range svc.Spec.Ports {
		nodePort[p.Name] = p.NodePort
	}
	a, err := kcl.addrs(ctx, time.Second, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{fmt.Sprintf("https://10.0.0.11:%d", nodePort["remote"]), fmt.Sprintf("https://10.0.0.12:%d", nodePort["remote"])}
	if got := a.endpoints("remote", "https://"); !slices.Equal(got, want) {
		t.Errorf("NodePort: remote endpoints %v, want %v", got, want)
	}
	if got := a.endpoints("admin", ""); len(got) != 2 || got[0] != fmt.Sprintf("10.0.0.11:%d", nodePort["admin"]) {
		t.Errorf("NodePort: admin endpoints %v", got)
	}

	if _, _, err := runWeft(t, "install", kc, testEndpoints, "--cluster-name=east", "--wait=false", "--set=apiserver.service.type=LoadBalancer"); err != nil {
		t.Fatal(err)
	}
	svc, err = c.Client.CoreV1().Services("weft-system").Get(ctx, "weft-clustermesh", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	svc.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: "203.0.113.7"}, {Hostname: "mesh.east.example.com"}}
	if _, err := c.Client.CoreV1().Services("weft-system").UpdateStatus(ctx, svc, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if a, err = kcl.addrs(ctx, time.Second, io.Discard); err != nil {
		t.Fatal(err)
	}
	if got, want := a.endpoints("remote", "https://"), []string{"https://203.0.113.7:2384", "https://mesh.east.example.com:2384"}; !slices.Equal(got, want) {
		t.Errorf("LoadBalancer: remote endpoints %v, want %v", got, want)
	}

	if _, _, err := runWeft(t, "install", kc, testEndpoints, "--cluster-name=east", "--wait=false", "--set=apiserver.service.type=ClusterIP"); err != nil {
		t.Fatal(err)
	}
	svc, err = c.Client.CoreV1().Services("weft-system").Get(ctx, "weft-clustermesh", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if a, err = kcl.addrs(ctx, time.Second, io.Discard); err != nil {
		t.Fatal(err)
	}
	if got, want := a.endpoints("admin", ""), []string{svc.Spec.ClusterIP + ":2383"}; !slices.Equal(got, want) {
		t.Errorf("ClusterIP: admin endpoints %v, want %v", got, want)
	}
}

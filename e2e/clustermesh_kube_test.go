package e2e

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/weftnet/weft/testenv"
)

// TestClusterMeshByContext: two Kubernetes clusters on which Weft is
// installed with `weft install` (the Helm chart), whose weft-apiservers are
// the chart's pods (run by testenv's kubelet from the chart's Deployment,
// ConfigMap, Secret, service account and RBAC), are connected by kube
// context only: `clustermesh enable --context` creates the clustermesh
// Secret, `connect --context --destination-context` connects them through
// their Services, `status --context` reads it from the cluster, and a
// Service annotated global in both is served by the pods of both.
func TestClusterMeshByContext(t *testing.T) {
	meshBinaries(t)
	spec := testenv.DefaultSpec()
	spec.Clusters, spec.Nodes, spec.Kubernetes, spec.ChartAPIServer, spec.NoAgents = 2, 1, true, true, true
	e := up(t, "kctx", spec)
	kubeconfig := contextsKubeconfig(t, e)
	// The CLI runs where the user's would: on the clusters' network (the
	// underlay), which reaches the kube-apiservers and the LoadBalancer
	// addresses.
	weft := func(args ...string) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		argv := append([]string{"netns", "exec", e.Underlay, e.Bin.Weft, "--kubeconfig", kubeconfig}, args...)
		out, err := exec.CommandContext(ctx, "ip", argv...).CombinedOutput()
		return string(out), err
	}
	mustWeft := func(args ...string) string {
		t.Helper()
		out, err := weft(args...)
		if err != nil {
			t.Fatalf("weft %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return out
	}

	for _, c := range e.Clusters {
		mustWeft("install", "--context", c.Name, "--cluster-name", c.Name, "--cluster-id", strconv.Itoa(c.ID),
			"--kvstore-endpoints", strings.Join(c.StoreEndpoints, ","), "--set", "podCIDRPool={"+c.PodCIDRPool+"}", "--wait=false")
	}
	// Nothing is enabled yet: connect says what to do and changes nothing.
	if out, err := weft("clustermesh", "connect", "--context", "c1", "--destination-context", "c2"); err == nil ||
		!strings.Contains(out, "clustermesh is not enabled for cluster c1") || !strings.Contains(out, "weft clustermesh enable --context c1") {
		t.Fatalf("connect before enable: want a refusal naming c1 and the command to run, got %v:\n%s", err, out)
	}
	if out, err := weft("clustermesh", "connect", "--context", "c1"); err == nil || !strings.Contains(out, "--destination-context") {
		t.Fatalf("connect without a destination: want a refusal naming --destination-context, got %v:\n%s", err, out)
	}

	for _, c := range e.Clusters {
		out := mustWeft("clustermesh", "enable", "--context", c.Name)
		for _, want := range []string{"Secret weft-system/weft-clustermesh: created", "ready Deployment weft-system/weft-apiserver",
			"apiserver of " + c.Name + ": answers at " + testenv.ChartPodIP(c.ID).String() + ":2383"} {
			if !strings.Contains(out, want) {
				t.Errorf("enable --context %s: output lacks %q:\n%s", c.Name, want, out)
			}
		}
	}
	if out := mustWeft("clustermesh", "enable", "--context", "c1"); !strings.Contains(out, "Secret weft-system/weft-clustermesh: unchanged") {
		t.Errorf("enable again: want the Secret unchanged:\n%s", out)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	for _, n := range e.Nodes {
		if err := e.StartAgent(ctx, n.Name); err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range e.Nodes {
		if err := e.WaitAgent(ctx, n.Name, 2*time.Minute); err != nil {
			t.Fatal(err)
		}
	}

	out := mustWeft("clustermesh", "connect", "--context", "c1", "--destination-context", "c2")
	for _, c := range []struct{ reader, served string }{{"c1", "c2"}, {"c2", "c1"}} {
		want := fmt.Sprintf("%s: connects to %s at https://%s:2384", c.reader, c.served, testenv.ChartPodIP(clusterID(t, e, c.served)))
		if !strings.Contains(out, want) {
			t.Errorf("connect: output lacks %q:\n%s", want, out)
		}
	}
	out = mustWeft("clustermesh", "status", "--context", "c1", "--wait", "--wait-duration", "1m", "-o", "json")
	if !strings.Contains(out, `"name": "c1"`) || !strings.Contains(out, `"remotes": [`+"\n"+`        "c2"`) || !strings.Contains(out, `"readers": [`+"\n"+`        "c2"`) {
		t.Errorf("status --context c1: want c2 as remote and reader:\n%s", out)
	}
	waitMeshSynced(t, e, map[string][]string{"c1": {"c2"}, "c2": {"c1"}})

	kx := &kubeFixture{e: e}
	ips := kx.globalShop(t)
	for _, c := range []string{"c1", "c2"} {
		waitBackends(t, fmt.Sprintf("shop/client of %s reaches exactly both clusters' pods through %v", c, ips[c]), []string{"web-c1", "web-c2"}, func() (string, error) {
			return kx.greeting(c, "shop", "client", ips[c])
		})
	}

	out = mustWeft("clustermesh", "disconnect", "--context", "c2", "--destination-context", "c1")
	if !strings.Contains(out, "c2: disconnected from c1") || !strings.Contains(out, "c1: disconnected from c2") {
		t.Errorf("disconnect: want both directions removed:\n%s", out)
	}
	waitBackends(t, "after disconnect, shop/client of c1 reaches only c1's pod", []string{"web-c1"}, func() (string, error) {
		return kx.greeting("c1", "shop", "client", ips["c1"])
	})
}

// contextsKubeconfig writes one kubeconfig with a context per cluster,
// named after it, as a user with several clusters has, for the underlay.
func contextsKubeconfig(t *testing.T, e *testenv.Env) string {
	t.Helper()
	merged := clientcmdapi.NewConfig()
	for _, c := range e.Clusters {
		cfg, err := clientcmd.LoadFromFile(c.UnderlayKubeconfig)
		if err != nil {
			t.Fatal(err)
		}
		cur := cfg.Contexts[cfg.CurrentContext]
		merged.Clusters[c.Name] = cfg.Clusters[cur.Cluster]
		merged.AuthInfos[c.Name] = cfg.AuthInfos[cur.AuthInfo]
		merged.Contexts[c.Name] = &clientcmdapi.Context{Cluster: c.Name, AuthInfo: c.Name}
	}
	merged.CurrentContext = e.Clusters[0].Name
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*merged, path); err != nil {
		t.Fatal(err)
	}
	return path
}

func clusterID(t *testing.T, e *testenv.Env, name string) int {
	t.Helper()
	c, err := e.Cluster(name)
	if err != nil {
		t.Fatal(err)
	}
	return c.ID
}

package e2e

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
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
		out := mustWeft("install", "--context", c.Name, "--cluster-name", c.Name, "--cluster-id", strconv.Itoa(c.ID),
			"--kvstore-endpoints", strings.Join(c.StoreEndpoints, ","), "--set", "podCIDRPool={"+c.PodCIDRPool+"}", "--wait=false")
		if want := "weft-system/secret/weft-clustermesh created"; !strings.Contains(out, want) {
			t.Errorf("install --context %s: output lacks %q:\n%s", c.Name, want, out)
		}
	}
	if out, err := weft("clustermesh", "connect", "--context", "c1"); err == nil || !strings.Contains(out, "--destination-context") {
		t.Fatalf("connect without a destination: want a refusal naming --destination-context, got %v:\n%s", err, out)
	}

	for _, c := range e.Clusters {
		out := mustWeft("clustermesh", "enable", "--context", c.Name)
		for _, want := range []string{"ready Deployment weft-system/weft-apiserver",
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

	// A new c2 apiserver pod (rollout restart): its served store starts
	// empty, and it gives c1 its read-only user again from the cluster
	// store, so c1 keeps reading c2.
	restarts := strings.Count(readFile(t, e.ChartPodLog("c2")), `msg="apiserver ready"`)
	kx.kubectl(t, "c2", "", "-n", "weft-system", "rollout", "restart", "deployment/weft-apiserver")
	eventually(t, time.Minute, "a new c2 apiserver pod", func() error {
		if n := strings.Count(readFile(t, e.ChartPodLog("c2")), `msg="apiserver ready"`); n <= restarts {
			return fmt.Errorf("%d starts", n)
		}
		return nil
	})
	if log := readFile(t, e.ChartPodLog("c2")); !strings.Contains(log, `msg="read-only users of connected clusters in place" component=apiserver cluster=c2 readers=[c1]`) {
		t.Errorf("the new c2 apiserver did not restore c1's read-only user (%s)", e.ChartPodLog("c2"))
	}
	mustWeft("clustermesh", "status", "--context", "c2", "--wait", "--wait-duration", "1m")
	waitMeshSynced(t, e, map[string][]string{"c1": {"c2"}, "c2": {"c1"}})
	for _, c := range []string{"c1", "c2"} {
		waitBackends(t, fmt.Sprintf("after c2's apiserver restarted, shop/client of %s reaches both clusters' pods", c), []string{"web-c1", "web-c2"}, func() (string, error) {
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

	// An embedded store: c2 installed again with --kvstore embedded. Its
	// apiserver, restarted for the changed pod template, serves the
	// cluster's store at its address, with its data in the node directory
	// (hostPath) its init container handed to the apiserver's user; a
	// client with the agent certificate the chart mounts into the agents
	// reads the cluster's configuration there.
	c2, _ := e.Cluster("c2")
	storeURL := "https://" + testenv.ChartPodIP(c2.ID).String() + ":2381"
	mustWeft("install", "--context", "c2", "--cluster-name", "c2", "--cluster-id", strconv.Itoa(c2.ID), "--kvstore", "embedded",
		"--kvstore-endpoints", storeURL, "--set", "podCIDRPool={"+c2.PodCIDRPool+"}", "--set", `apiserver.nodeSelector.kubernetes\.io/hostname=c2-n1`, "--wait=false")
	out = mustWeft("clustermesh", "enable", "--context", "c2")
	if !strings.Contains(out, "ready Deployment weft-system/weft-apiserver") || !strings.Contains(out, "apiserver of c2: answers") {
		t.Errorf("enable --context c2 after the embedded install: want the apiserver ready again:\n%s", out)
	}
	logf := readFile(t, e.ChartPodLog("c2"))
	ready := regexp.MustCompile(`msg="apiserver ready".*`).FindAllString(logf, -1)
	if len(ready) < 2 || !strings.Contains(ready[len(ready)-1], "embedded-store=true") || !strings.Contains(logf, "owned by 65532:65532") {
		t.Errorf("c2's apiserver did not restart with the embedded store and its data directory handed to its user (%s):\n%s", e.ChartPodLog("c2"), strings.Join(ready, "\n"))
	}
	readEmbeddedStore(t, e, storeURL, "weft/cluster-config/c2")
}

// readEmbeddedStore reads key from the store at url (in the underlay) as
// an agent would: with the ca.crt, agent.crt and agent.key of the
// cluster's clustermesh Secret.
func readEmbeddedStore(t *testing.T, e *testenv.Env, url, key string) {
	t.Helper()
	cfg, err := clientcmd.BuildConfigFromFlags("", e.Clusters[1].Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := cs.CoreV1().Secrets("weft-system").Get(ctx, "weft-clustermesh", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.X509KeyPair(s.Data["agent.crt"], s.Data["agent.key"])
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(s.Data["ca.crt"])
	dial := func(ctx context.Context, addr string) (conn net.Conn, err error) {
		err = testenv.InNetNS(e.Underlay, func() error {
			var d net.Dialer
			conn, err = d.DialContext(ctx, "tcp4", addr)
			return err
		})
		return conn, err
	}
	client, err := clientv3.New(clientv3.Config{Endpoints: []string{url}, DialTimeout: 10 * time.Second,
		TLS:         &tls.Config{Certificates: []tls.Certificate{pair}, RootCAs: pool, MinVersion: tls.VersionTLS12},
		DialOptions: []grpc.DialOption{grpc.WithContextDialer(dial)}})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	eventually(t, time.Minute, "the embedded store at "+url+" holds "+key, func() error {
		gctx, gcancel := context.WithTimeout(ctx, 5*time.Second)
		defer gcancel()
		resp, err := client.Get(gctx, key)
		if err != nil {
			return err
		}
		if len(resp.Kvs) == 0 {
			return fmt.Errorf("no key %s", key)
		}
		return nil
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

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

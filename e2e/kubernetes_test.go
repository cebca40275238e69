package e2e

import (
	"context"
	"fmt"
	"io"
	"net/netip"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/weftnet/weft/testenv"
)

// TestKubernetesMode drives two Kubernetes-mode clusters (a real
// kube-apiserver each, mirrored by its weft-apiserver; testenv's kubelet
// runs the Pods) with kubectl only: the team-isolation policies give the
// same reachability as in standalone mode, and a Service annotated global
// in both clusters is served by the pods of both, affinity local failing
// over to the other cluster when the local pod is deleted; and the
// connectivity test passes on it.
func TestKubernetesMode(t *testing.T) {
	meshBinaries(t)
	spec := testenv.DefaultSpec()
	spec.Clusters, spec.Nodes, spec.Kubernetes = 2, 2, true
	e := up(t, "k8s", spec)
	waitMeshSynced(t, e, map[string][]string{"c1": {"c2"}, "c2": {"c1"}})
	kx := &kubeFixture{e: e}

	t.Run("team-isolation", kx.teamIsolation)
	t.Run("global-service", kx.globalService)
	t.Run("mcs-api", kx.mcsAPI)
	// The connectivity test's pods are Pods in namespace weft-test here,
	// created through the API and run by testenv's kubelet; its services
	// are Kubernetes Services, mirrored by the apiservers.
	t.Run("connectivity", func(t *testing.T) {
		rep, progress := runConnectivityProgress(t, e)
		if n := len(kx.kubectl(t, "c1", "", "get", "pods", "-n", "weft-test", "-l", "app=weft-connectivity", "-o", "name")); n == 0 {
			t.Errorf("the connectivity test created no Pods in c1's namespace weft-test (%d scenarios ran)", len(rep.Results))
		}
		for _, c := range []string{"c1", "c2"} {
			for _, svc := range []string{"weft-connectivity", "weft-connectivity-global"} {
				if want := "applying service weft-test/" + svc + " in " + c + " through the Kubernetes API"; !strings.Contains(progress, want) {
					t.Errorf("the connectivity test did not say %q", want)
				}
			}
		}
		// The run deletes its Services again.
		if out := kx.kubectl(t, "c1", "", "get", "services", "-n", "weft-test", "-o", "name"); strings.Contains(out, "service/") {
			t.Errorf("services left in c1's weft-test after the connectivity test: %s", out)
		}
	})
}

type kubeFixture struct{ e *testenv.Env }

// fresh is the environment as env.json has it now: testenv's kubelet, a
// process of its own, records the pods it wires there.
func (kx *kubeFixture) fresh() *testenv.Env {
	e, err := testenv.Load(kx.e.Name, io.Discard, nil)
	if err != nil {
		return kx.e
	}
	return e
}

// kubectl runs `weft testenv kubectl` against cluster with stdin.
func (kx *kubeFixture) kubectl(t *testing.T, cluster, stdin string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, kx.e.Bin.Weft, append([]string{"testenv", "kubectl", "--name", kx.e.Name, "--cluster", cluster, "--"}, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("kubectl %s in %s: %v\n%s", strings.Join(args, " "), cluster, err, out)
	}
	return string(out)
}

// kubePod is the YAML of a Pod with an echo server on 80 and 8080.
func kubePod(ns, name string, labels map[string]string) string {
	var l []string
	for k, v := range labels {
		l = append(l, k+": "+v)
	}
	slices.Sort(l)
	return fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata:
  name: %s
  namespace: %s
  labels: {%s}
spec:
  containers:
  - name: echo
    image: weft.test/echo
    ports: [{containerPort: 80}, {containerPort: 8080}]
---
`, name, ns, strings.Join(l, ", "))
}

// podAddr is cluster's pod ns/name at port, as Kubernetes reports it.
func (kx *kubeFixture) podAddr(t *testing.T, cluster, ns, name string, port uint16) netip.AddrPort {
	t.Helper()
	out := kx.kubectl(t, cluster, "", "get", "pod", "-n", ns, name, "-o", "jsonpath={.status.podIP}")
	ip, err := netip.ParseAddr(strings.TrimSpace(out))
	if err != nil {
		t.Fatalf("pod %s/%s of %s has no podIP: %q", ns, name, cluster, out)
	}
	p, err := kx.fresh().Pod(testenv.KubePodName(cluster, ns, name))
	if err != nil || p.Addr() != ip {
		t.Fatalf("pod %s/%s of %s: Kubernetes says %v, testenv wired %+v (%v)", ns, name, cluster, ip, p, err)
	}
	return netip.AddrPortFrom(ip, port)
}

// greeting connects from cluster's pod ns/name to dst and returns the name
// of the pod that answered. It connects from a process in the node's
// cgroup, as a container would, so that socket load balancing applies.
func (kx *kubeFixture) greeting(cluster, ns, name string, dst netip.AddrPort) (string, error) {
	tg, err := kx.fresh().Target("pod/" + testenv.KubePodName(cluster, ns, name))
	if err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	script := fmt.Sprintf("exec 3<>/dev/tcp/%s/%d && head -n1 <&3", dst.Addr(), dst.Port())
	out, err := tg.Output(ctx, "timeout", "2", "bash", "-c", script)
	line := strings.TrimSpace(string(out))
	_, at, ok := strings.Cut(line, " at ")
	if err != nil || !strings.HasPrefix(line, "from ") || !ok {
		return "", fmt.Errorf("connect to %s: no greeting: %q %v", dst, line, err)
	}
	return at, nil
}

func (kx *kubeFixture) reaches(t *testing.T, cluster, src string, dst netip.AddrPort, want bool) {
	t.Helper()
	ns, name, _ := strings.Cut(src, "/")
	verb := map[bool]string{true: "reaches", false: "is refused by"}[want]
	eventually(t, 30*time.Second, fmt.Sprintf("%s of %s %s %s", src, cluster, verb, dst), func() error {
		_, err := kx.greeting(cluster, ns, name, dst)
		switch {
		case want && err != nil:
			return err
		case !want && err == nil:
			return fmt.Errorf("connection got through")
		}
		return nil
	})
}

// teamIsolation applies the team-isolation example with kubectl and checks
// the reachability the standalone policy suite checks (policy_scenarios_test.go).
func (kx *kubeFixture) teamIsolation(t *testing.T) {
	const c = "c1"
	objs := `apiVersion: v1
kind: Namespace
metadata: {name: team-a}
---
apiVersion: v1
kind: Namespace
metadata: {name: team-b}
---
` + kubePod("team-a", "a-frontend", map[string]string{"app": "frontend"}) +
		kubePod("team-a", "a-db", map[string]string{"app": "db"}) +
		kubePod("team-b", "b-api", map[string]string{"app": "api"}) +
		kubePod("team-b", "b-other", map[string]string{"app": "other"})
	kx.kubectl(t, c, objs, "apply", "-f", "-")
	kx.kubectl(t, c, "", "wait", "--for=condition=Ready", "pod", "--all", "-n", "team-a", "--timeout=90s")
	kx.kubectl(t, c, "", "wait", "--for=condition=Ready", "pod", "--all", "-n", "team-b", "--timeout=90s")
	aDB := kx.podAddr(t, c, "team-a", "a-db", portHTTP)
	bAPI, bAPIAlt := kx.podAddr(t, c, "team-b", "b-api", portHTTP), kx.podAddr(t, c, "team-b", "b-api", portAlt)
	bOther := kx.podAddr(t, c, "team-b", "b-other", portHTTP)

	kx.reaches(t, c, "team-b/b-other", aDB, true) // no policy yet: open
	kx.kubectl(t, c, exampleDoc(t, "team-isolation.yaml"), "apply", "-f", "-")
	kx.reaches(t, c, "team-a/a-frontend", aDB, true)
	kx.reaches(t, c, "team-b/b-other", aDB, false)
	kx.reaches(t, c, "team-a/a-frontend", bAPIAlt, true)
	kx.reaches(t, c, "team-a/a-db", bAPI, false)
	kx.reaches(t, c, "team-b/b-other", bAPI, false)
	kx.reaches(t, c, "team-a/a-db", bOther, true) // not selected: open

	kx.kubectl(t, c, exampleDoc(t, "team-isolation.yaml"), "delete", "-f", "-")
	kx.reaches(t, c, "team-b/b-other", aDB, true)
}

// globalService: shop/web is annotated global in both clusters.
func (kx *kubeFixture) globalService(t *testing.T) {
	ips := kx.globalShop(t)
	served := func(c string, want ...string) {
		t.Helper()
		waitBackends(t, fmt.Sprintf("shop/client of %s reaches exactly %v through %v", c, want, ips[c]), want, func() (string, error) {
			return kx.greeting(c, "shop", "client", ips[c])
		})
	}
	served("c1", "web-c1", "web-c2")
	served("c2", "web-c1", "web-c2")

	kx.kubectl(t, "c1", "", "annotate", "service", "-n", "shop", "web", "service.cilium.io/affinity=local")
	served("c1", "web-c1")
	kx.kubectl(t, "c1", "", "delete", "pod", "-n", "shop", "web-c1")
	served("c1", "web-c2") // fails over to c2
	kx.kubectl(t, "c1", kubePod("shop", "web-c1", map[string]string{"app": "web"}), "apply", "-f", "-")
	served("c1", "web-c1") // and back

	kx.kubectl(t, "c1", "", "annotate", "service", "-n", "shop", "web", "service.cilium.io/affinity-", "service.cilium.io/global-")
	served("c2", "web-c2") // c1 withdrew its backends
	served("c1", "web-c1") // and no longer takes c2's
	kx.kubectl(t, "c1", "", "annotate", "service", "-n", "shop", "web", "service.cilium.io/global=true")
	served("c2", "web-c1", "web-c2")
	kx.kubectl(t, "c2", "", "delete", "service", "-n", "shop", "web")
	served("c1", "web-c1") // c2's backends left with its Service
}

// globalShop creates, in clusters c1 and c2, namespace shop with a Service
// web annotated global, its pod web-<cluster> and a pod client, and
// returns each cluster's ClusterIP of web.
func (kx *kubeFixture) globalShop(t *testing.T) map[string]netip.AddrPort {
	t.Helper()
	svc := `apiVersion: v1
kind: Namespace
metadata: {name: shop}
---
apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: shop
  annotations: {service.cilium.io/global: "true"}
spec:
  selector: {app: web}
  ports: [{port: 80, targetPort: 8080}]
---
`
	ips := map[string]netip.AddrPort{}
	for _, c := range []string{"c1", "c2"} {
		kx.kubectl(t, c, svc+kubePod("shop", "web-"+c, map[string]string{"app": "web"})+kubePod("shop", "client", map[string]string{"app": "client"}), "apply", "-f", "-")
		kx.kubectl(t, c, "", "wait", "--for=condition=Ready", "pod", "--all", "-n", "shop", "--timeout=90s")
		out := kx.kubectl(t, c, "", "get", "service", "-n", "shop", "web", "-o", "jsonpath={.spec.clusterIP}")
		ips[c] = netip.AddrPortFrom(netip.MustParseAddr(strings.TrimSpace(out)), 80)
	}
	return ips
}

// mcsAPI: shop/web exported (ServiceExport) in both clusters and shop/solo
// in c1 only: every cluster gets a ServiceImport whose ClusterSetIP reaches
// the backends of every exporting cluster (the same backends as the
// annotation gives); unexporting withdraws them, deleting the last export
// removes the imports.
func (kx *kubeFixture) mcsAPI(t *testing.T) {
	const export = `apiVersion: multicluster.x-k8s.io/v1alpha1
kind: ServiceExport
metadata: {name: %s, namespace: mcs}
`
	svc := `apiVersion: v1
kind: Namespace
metadata: {name: mcs}
---
apiVersion: v1
kind: Service
metadata: {name: %[1]s, namespace: mcs}
spec:
  selector: {app: %[1]s}
  ports: [{port: 80, targetPort: 8080}]
---
`
	for _, c := range []string{"c1", "c2"} {
		objs := fmt.Sprintf(svc, "web") + fmt.Sprintf(export, "web") + "---\n" +
			kubePod("mcs", "web-"+c, map[string]string{"app": "web"}) + kubePod("mcs", "client", map[string]string{"app": "client"})
		if c == "c1" {
			objs += fmt.Sprintf(svc, "solo") + fmt.Sprintf(export, "solo") + "---\n" + kubePod("mcs", "solo-c1", map[string]string{"app": "solo"})
		}
		kx.kubectl(t, c, objs, "apply", "-f", "-")
		kx.kubectl(t, c, "", "wait", "--for=condition=Ready", "pod", "--all", "-n", "mcs", "--timeout=90s")
	}
	clusterSetIP := func(c, name string) (netip.AddrPort, error) {
		out, err := exec.Command(kx.e.Bin.Weft, "testenv", "kubectl", "--name", kx.e.Name, "--cluster", c, "--",
			"get", "serviceimport", "-n", "mcs", name, "-o", "jsonpath={.spec.ips[0]}").CombinedOutput()
		if err != nil {
			return netip.AddrPort{}, fmt.Errorf("%v: %s", err, out)
		}
		ip, err := netip.ParseAddr(strings.TrimSpace(string(out)))
		return netip.AddrPortFrom(ip, 80), err
	}
	served := func(c, name string, want ...string) {
		t.Helper()
		var addr netip.AddrPort
		eventually(t, time.Minute, fmt.Sprintf("ServiceImport mcs/%s in %s", name, c), func() (err error) {
			addr, err = clusterSetIP(c, name)
			return err
		})
		waitBackends(t, fmt.Sprintf("mcs/client of %s reaches exactly %v through the ClusterSetIP %v of %s", c, want, addr, name), want, func() (string, error) {
			return kx.greeting(c, "mcs", "client", addr)
		})
	}
	served("c1", "web", "web-c1", "web-c2")
	served("c2", "web", "web-c1", "web-c2")
	served("c2", "solo", "solo-c1") // exported by c1 only, imported by c2

	kx.kubectl(t, "c2", "", "delete", "serviceexport", "-n", "mcs", "web")
	served("c1", "web", "web-c1") // c2 no longer offers its backend
	kx.kubectl(t, "c1", "", "delete", "serviceexport", "-n", "mcs", "solo")
	eventually(t, time.Minute, "the ServiceImport of solo leaves c2 once nobody exports it", func() error {
		if _, err := clusterSetIP("c2", "solo"); err == nil {
			return fmt.Errorf("still imported")
		}
		return nil
	})
}

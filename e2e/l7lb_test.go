package e2e

import (
	"context"
	"fmt"
	"net/http"
	"net/netip"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"

	"github.com/weftnet/weft/api/agentapi"
	"github.com/weftnet/weft/testenv"
)

const l7lbNamespace = "l7lb-e2e"

// l7lbBackend is an HTTP server in a pod on port 8080 that answers
// "<pod> <path>" with its status code (200 unless set).
type l7lbBackend struct {
	name string
	mu   sync.Mutex
	code int
	hits int
}

func (b *l7lbBackend) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b.mu.Lock()
	b.hits++
	code := b.code
	b.mu.Unlock()
	w.WriteHeader(code)
	fmt.Fprintf(w, "%s %s", b.name, r.URL.Path)
}

func (b *l7lbBackend) seen() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.hits
}

// l7lbDoc balances web:80 80/20 between web-v1 and web-v2, tries three
// times in all, rewrites /api/ to / and ejects a backend after two
// failures in a row for five minutes.
const l7lbDoc = `apiVersion: weft.io/v1
kind: L7LoadBalancing
metadata: {name: web, namespace: l7lb-e2e}
spec:
  service: web
  port: 80
  backends:
  - {service: web-v1, weight: 80}
  - {service: web-v2, weight: 20}
  retries: {attempts: 3, perTryTimeout: 2s}
  rewrite:
    prefix: {from: /api/, to: /}
  outlierDetection: {consecutive5xx: 2, ejectionTime: 5m}
`

// TestL7LoadBalancing: an L7LoadBalancing document applied with `weft
// l7lb apply` makes both nodes serve a Service's ClusterIP through their
// L7 balancer. web-v1 has two pods, one of which answers every request
// 503; web-v2 one pod. From pods on both nodes, 400 requests (a new
// connection each, to the ClusterIP of web) all get 200 — the failing
// pod's answers were retried — split 80/20 between web-v1 and web-v2
// within 7 points, with the path rewritten; the failing pod saw requests
// (it was tried) and, once ejected, no more than a few. A bad document is
// refused naming the field and nothing changes; applying the same one
// again is "unchanged"; after a node's agent is killed and restarted its
// pods are balanced again; after `weft l7lb delete` connections reach the
// Service's own backends again (the failing pod's 503 shows).
func TestL7LoadBalancing(t *testing.T) {
	spec := testenv.DefaultSpec()
	e := up(t, "l7lb", spec)
	n1, n2 := e.Nodes[0].Name, e.Nodes[1].Name
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()

	backends := l7lbPods(ctx, t, e, []podDef{
		{"v1-good", n1, l7lbNamespace, map[string]string{"app": "web", "version": "v1"}},
		{"v1-bad", n2, l7lbNamespace, map[string]string{"app": "web", "version": "v1"}},
		{"v2", n2, l7lbNamespace, map[string]string{"app": "web", "version": "v2"}},
		{"client-1", n1, l7lbNamespace, map[string]string{"app": "client"}},
		{"client-2", n2, l7lbNamespace, map[string]string{"app": "client"}},
	}, "v1-bad")
	for _, svc := range []struct{ name, selector string }{{"web", "app=web"}, {"web-v1", "version=v1"}, {"web-v2", "version=v2"}} {
		weftCLI(t, e, n1, "", "service", "create", l7lbNamespace+"/"+svc.name, "--port", "80:8080/TCP", "--selector", svc.selector)
	}
	url := "http://" + l7lbClusterIP(t, e, n1, "web") + "/api/x"

	// Without a document, the Service's own backends answer, the failing
	// one included.
	eventually(t, time.Minute, "web's ClusterIP reaches its failing backend", func() error {
		if got := fetchAll(ctx, t, e, "client-1", url, 20); got["v1-bad /api/x 503"] == 0 {
			return fmt.Errorf("answers %v", got)
		}
		return nil
	})

	out := weftCLI(t, e, n1, l7lbDoc, "l7lb", "apply", "-f", "-")
	if !strings.Contains(out, "l7lb l7lb-e2e/web (service web port 80) created") {
		t.Fatalf("weft l7lb apply: %s", out)
	}
	if out := weftCLI(t, e, n2, l7lbDoc, "l7lb", "apply", "-f", "-"); !strings.Contains(out, "unchanged") {
		t.Errorf("applying the same document again: %s, want unchanged", out)
	}
	for _, n := range []string{n1, n2} {
		eventually(t, 30*time.Second, n+" serves the document", func() error {
			if out := weftCLI(t, e, n, "", "l7lb", "list"); !strings.Contains(out, "serving") {
				return fmt.Errorf("weft l7lb list: %s", out)
			}
			return nil
		})
	}

	for _, client := range []string{"client-1", "client-2"} {
		t.Run("weighted-with-retries-from-"+client, func(t *testing.T) {
			badBefore := backends["v1-bad"].seen()
			const n = 400
			got := fetchAll(ctx, t, e, client, url, n)
			v1, v2 := got["v1-good /x 200"], got["v2 /x 200"]
			if v1+v2 != n {
				t.Fatalf("answers %v: want every one of %d requests 200 from v1-good or v2 with the path rewritten to /x", got, n)
			}
			if share := float64(v1) / n; share < 0.73 || share > 0.87 {
				t.Errorf("web-v1 answered %d of %d (%.2f), want 0.80 ± 0.07; v2 %d", v1, n, share, v2)
			}
			if bad := backends["v1-bad"].seen() - badBefore; client == "client-1" && (bad < 1 || bad > 4) {
				// Each node's balancer tries the failing pod until two
				// failures in a row eject it (a retry goes elsewhere).
				t.Errorf("the failing pod saw %d requests from %s's node, want 1-4: tried, retried elsewhere, then ejected", bad, client)
			}
			t.Logf("%s: web-v1 %d, web-v2 %d of %d", client, v1, v2, n)
		})
	}

	t.Run("bad-document-writes-nothing", func(t *testing.T) {
		bad := strings.Replace(l7lbDoc, "weight: 20", "weight: 2000", 1)
		out, err := weftCLIErr(e, n1, bad, "l7lb", "apply", "-f", "-")
		if err == nil || !strings.Contains(out, "spec.backends[1].weight 2000: want 0-1000") || !strings.Contains(out, "nothing was stored") {
			t.Fatalf("bad document: %v %s; want refused naming spec.backends[1].weight", err, out)
		}
		clash := strings.Replace(l7lbDoc, "name: web,", "name: web-2,", 1)
		out, err = weftCLIErr(e, n1, clash, "l7lb", "apply", "-f", "-")
		if err == nil || !strings.Contains(out, "selected by the stored L7LoadBalancing l7lb-e2e/web") {
			t.Fatalf("second document for web:80: %v %s; want refused", err, out)
		}
		if out := weftCLI(t, e, n1, "", "l7lb", "list"); strings.Contains(out, "web-2") || !strings.Contains(out, "web-v2:80=20") {
			t.Fatalf("after refused applies: %s", out)
		}
	})

	t.Run("agent-restart-serves-again", func(t *testing.T) {
		// Under load from client-1 while n1's agent is killed and starts
		// again: requests are refused while nothing listens, but none is
		// answered by the Service's own backends (path not rewritten).
		stop := make(chan struct{})
		loadDone := make(chan map[string]int)
		go func() {
			seen := map[string]int{}
			defer func() { loadDone <- seen }()
			tgt, err := e.Target("pod/client-1")
			if err != nil {
				return
			}
			for {
				select {
				case <-stop:
					return
				case <-time.After(20 * time.Millisecond): // pacing, not synchronisation
				}
				got, _ := fetchSome(ctx, tgt, url, 5)
				for k, v := range got {
					seen[k] += v
				}
			}
		}()
		_, err := e.RestartAgent(ctx, n1, syscall.SIGKILL, time.Minute)
		close(stop)
		seen := <-loadDone
		if err != nil {
			t.Fatal(err)
		}
		for answer := range seen {
			if strings.Contains(answer, "/api/x") {
				t.Errorf("during the restart a request was answered by the Service's own backend: %q (all: %v)", answer, seen)
			}
		}
		t.Logf("answers during the restart: %v", seen)
		// The restarted agent opens a new listener and points the
		// ClusterIP at it; the failing pod is tried and retried again.
		eventually(t, time.Minute, "client-1 is balanced by n1's new listener", func() error {
			got := fetchAll(ctx, t, e, "client-1", url, 40)
			if got["v1-good /x 200"]+got["v2 /x 200"] != 40 {
				return fmt.Errorf("answers %v", got)
			}
			return nil
		})
	})

	t.Run("delete-restores-the-service-backends", func(t *testing.T) {
		if out := weftCLI(t, e, n2, "", "l7lb", "delete", l7lbNamespace+"/web"); !strings.Contains(out, "deleted l7lb l7lb-e2e/web") {
			t.Fatalf("weft l7lb delete: %s", out)
		}
		eventually(t, 30*time.Second, "web's own backends answer again", func() error {
			if got := fetchAll(ctx, t, e, "client-1", url, 20); got["v1-bad /api/x 503"] == 0 {
				return fmt.Errorf("answers %v", got)
			}
			return nil
		})
	})
}

// l7lbPods adds the pods; those labelled app=web serve l7lbBackend on
// 8080, answering 503 when named in failing.
func l7lbPods(ctx context.Context, t *testing.T, e *testenv.Env, defs []podDef, failing ...string) map[string]*l7lbBackend {
	t.Helper()
	backends := map[string]*l7lbBackend{}
	for _, d := range defs {
		p, err := e.AddPod(ctx, testenv.PodSpec{Name: d.name, Node: d.node, Namespace: d.ns, Labels: d.labels})
		if err != nil {
			t.Fatalf("add pod %s: %v", d.name, err)
		}
		if d.labels["app"] == "web" {
			b := &l7lbBackend{name: d.name, code: http.StatusOK}
			if slices.Contains(failing, d.name) {
				b.code = http.StatusServiceUnavailable
			}
			backends[d.name] = b
			serveIn(t, e, "pod/"+d.name, netip.AddrPortFrom(p.Addr(), 8080), b)
		}
	}
	return backends
}

// l7lbClusterIP is the ClusterIP of service l7lb-e2e/name in node's cluster.
func l7lbClusterIP(t *testing.T, e *testenv.Env, node, name string) string {
	t.Helper()
	var ws agentapi.ServiceSpec
	if err := protojson.Unmarshal([]byte(weftCLI(t, e, node, "", "service", "get", l7lbNamespace+"/"+name, "-o", "json")), &ws); err != nil {
		t.Fatal(err)
	}
	return ws.GetClusterIp()
}

// fetchAll sends n GET requests to url from a process in pod client (in
// its node's cgroup, so the socket load balancer applies), a new
// connection each, and counts the answers as "<body> <status>".
func fetchAll(ctx context.Context, t *testing.T, e *testenv.Env, client, url string, n int) map[string]int {
	t.Helper()
	got, err := fetchSome(ctx, mustTarget(t, e, "pod/"+client), url, n)
	if err != nil {
		t.Fatalf("curl from %s: %v", client, err)
	}
	return got
}

// fetchSome is fetchAll that also returns the answers when some requests
// failed (a failed one counts as " 000").
func fetchSome(ctx context.Context, tgt testenv.Target, url string, n int) (map[string]int, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	out, err := tgt.Output(ctx, "curl", "-sS", "--max-time", "10", "-H", "Connection: close",
		"-w", " %{http_code}\\n", fmt.Sprintf("%s?[1-%d]", url, n))
	got := map[string]int{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if strings.HasPrefix(line, "curl: ") {
			continue // curl's error message of a failed request
		}
		got[line]++
	}
	return got, err
}

// weftCLIErr runs the CLI against node and returns its output and error.
func weftCLIErr(e *testenv.Env, node, stdin string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, e.Bin.Weft, append([]string{"--name", e.Name, "--node", node}, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// TestL7LoadBalancingGlobal: a global Service in two connected clusters,
// balanced in c1 by an L7LoadBalancing document with retries. c1's own
// pod answers 503, so every request from c1's client is answered by c2's
// pod: the balancer on c1's node has the remote cluster's backends (the
// node's service table merges them) and retries across the mesh.
func TestL7LoadBalancingGlobal(t *testing.T) {
	meshBinaries(t)
	spec := testenv.DefaultSpec()
	spec.Clusters, spec.Nodes = 2, 1
	e := up(t, "l7lbgs", spec)
	waitMeshSynced(t, e, map[string][]string{"c1": {"c2"}, "c2": {"c1"}})
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	backends := l7lbPods(ctx, t, e, []podDef{
		{"web-c1", "c1-n1", l7lbNamespace, map[string]string{"app": "web"}},
		{"web-c2", "c2-n1", l7lbNamespace, map[string]string{"app": "web"}},
		{"client-c1", "c1-n1", l7lbNamespace, map[string]string{"app": "client"}},
	}, "web-c1")
	for _, node := range []string{"c1-n1", "c2-n1"} {
		weftCLI(t, e, node, "", "service", "create", l7lbNamespace+"/web", "--port", "80:8080/TCP", "--selector", "app=web",
			"--annotation", "service.cilium.io/global=true")
	}
	url := "http://" + l7lbClusterIP(t, e, "c1-n1", "web") + "/"
	eventually(t, time.Minute, "the global service reaches both clusters' pods", func() error {
		got := fetchAll(ctx, t, e, "client-c1", url, 20)
		if got["web-c1 / 503"] == 0 || got["web-c2 / 200"] == 0 {
			return fmt.Errorf("answers %v", got)
		}
		return nil
	})

	doc := `apiVersion: weft.io/v1
kind: L7LoadBalancing
metadata: {name: web, namespace: l7lb-e2e}
spec:
  service: web
  port: 80
  retries: {attempts: 2, perTryTimeout: 2s}
`
	weftCLI(t, e, "c1-n1", doc, "l7lb", "apply", "-f", "-")
	eventually(t, 30*time.Second, "c1-n1 serves the document", func() error {
		if out := weftCLI(t, e, "c1-n1", "", "l7lb", "list"); !strings.Contains(out, "serving") {
			return fmt.Errorf("weft l7lb list: %s", out)
		}
		return nil
	})
	const n = 100
	if got := fetchAll(ctx, t, e, "client-c1", url, n); got["web-c2 / 200"] != n {
		t.Fatalf("answers %v: want all %d from web-c2 (c1's pod's 503 retried in c2)", got, n)
	}
	if backends["web-c1"].seen() == 0 {
		t.Error("c1's failing pod saw no request: the balancer never tried it")
	}
}

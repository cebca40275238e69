package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/weftnet/weft/e2e/connectivity"
	"github.com/weftnet/weft/testenv"
)

// TestConnectivity brings up three nodes in every cell of {tunnel, native}
// × {etcd, consul} and runs every connectivity scenario in it.
func TestConnectivity(t *testing.T) {
	for _, routing := range []string{testenv.RoutingTunnel, testenv.RoutingNative} {
		for _, store := range []string{testenv.StoreEtcd, testenv.StoreConsul} {
			t.Run(routing+"/"+store, func(t *testing.T) {
				start := time.Now()
				spec := testenv.DefaultSpec()
				spec.Nodes, spec.Routing, spec.KVStore = 3, routing, store
				e := up(t, "cx-"+routing[:3]+"-"+store[:3], spec)
				rep := runConnectivity(t, e)
				t.Logf("cell %s/%s (1 cluster × 3 nodes): %d scenarios run, %d skipped, in %v including bring-up",
					routing, store, len(rep.Results)-len(rep.Skipped()), len(rep.Skipped()), time.Since(start).Round(time.Second))
			})
		}
	}
}

// TestConnectivityMesh runs the catalogue on three clusters of two nodes
// connected by clustermesh, in every cell of {tunnel, native} × {etcd,
// consul}: every cluster's own tests, pod to pod across clusters, the
// global service answered from every cluster and the entity cluster
// confined to the local cluster. The tunnel/etcd cell also checks the
// mesh-wide views of the traffic (observe, relays, metrics, service map).
func TestConnectivityMesh(t *testing.T) {
	meshBinaries(t)
	for _, routing := range []string{testenv.RoutingTunnel, testenv.RoutingNative} {
		for _, store := range []string{testenv.StoreEtcd, testenv.StoreConsul} {
			t.Run(routing+"/"+store, func(t *testing.T) {
				start := time.Now()
				spec := testenv.DefaultSpec()
				spec.Clusters, spec.Nodes, spec.Routing, spec.KVStore = 3, 2, routing, store
				spec.AgentArgs = []string{"--metrics-address", "127.0.0.1:" + strconv.Itoa(metricsPort)}
				name := "cx-mesh"
				if routing != testenv.RoutingTunnel || store != testenv.StoreEtcd {
					name = "cxm-" + routing[:3] + "-" + store[:3]
				}
				e := up(t, name, spec)
				rep := runConnectivity(t, e)
				checkMeshScenarios(t, rep)
				if name == "cx-mesh" {
					// The same view from the CLI's own merge of every
					// agent and through the relays: c1's relay reads its
					// agents and c2's and c3's relays.
					checkMeshWideObserve(t, e, "--all-nodes")
					checkMeshWideObserve(t, e, "--relay", "c1")
					checkMeshMetrics(t, e)
					checkMeshServiceMap(t, e)
					checkRelayReportsDownAgent(t, e)
				}
				t.Logf("cell %s/%s (3 clusters × 2 nodes): %d scenarios run, %d skipped, in %v including bring-up",
					routing, store, len(rep.Results)-len(rep.Skipped()), len(rep.Skipped()), time.Since(start).Round(time.Second))
			})
		}
	}
}

// TestConnectivityMeshOverlapping runs the catalogue on three clusters of
// two nodes that share the pod CIDR pool 10.100.0.0/16 and reach each
// other through global addresses (tunnel routing, etcd): the mesh
// scenarios address another cluster's pods by their global addresses and
// expect to be seen by theirs (docs/clustermesh.md, "Global addressing").
func TestConnectivityMeshOverlapping(t *testing.T) {
	meshBinaries(t)
	start := time.Now()
	spec := testenv.DefaultSpec()
	spec.Clusters, spec.Nodes, spec.OverlappingPodCIDRs = 3, 2, true
	e := up(t, "cxm-ov", spec)
	rep := runConnectivity(t, e)
	checkMeshScenarios(t, rep)
	t.Logf("overlapping pod CIDRs (3 clusters × 2 nodes): %d scenarios run, %d skipped, in %v including bring-up",
		len(rep.Results)-len(rep.Skipped()), len(rep.Skipped()), time.Since(start).Round(time.Second))
}

// checkMeshScenarios fails t unless the mesh's own scenarios ran in every
// cluster.
func checkMeshScenarios(t *testing.T, rep connectivity.Report) {
	t.Helper()
	for _, part := range []string{"cross-cluster/", "global-service/", "cluster-entity-multi-cluster/pod-to-pod-other-cluster/"} {
		n := 0
		for _, r := range rep.Results {
			if strings.Contains(r.Name, part) && r.Skipped == "" {
				n++
			}
		}
		if n < 3 {
			t.Errorf("connectivity test ran %d %s scenarios, expected one per cluster at least", n, part)
		}
	}
}

// checkMeshServiceMap reads the service map c1's apiserver serves over its
// relay: the page, and a batch of flows observed in cluster c3 (through
// c3's relay).
func checkMeshServiceMap(t *testing.T, e *testenv.Env) {
	t.Helper()
	base, err := e.MeshUI("c1")
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return testenv.DialIn(ctx, e.Underlay, network, addr)
		}}}
	resp, err := client.Get(base)
	if err != nil {
		t.Fatalf("GET %s: %v", base, err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(page), "<html") {
		t.Fatalf("GET %s: %s, want the service map page:\n%.300s", base, resp.Status, page)
	}
	resp, err = client.Get(base + "api/flows?cluster=c3&last=100")
	if err != nil {
		t.Fatalf("GET %sapi/flows: %v", base, err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<22)
	for sc.Scan() {
		data, ok := strings.CutPrefix(sc.Text(), "data: ")
		if !ok {
			continue
		}
		var b struct {
			Flows []json.RawMessage `json:"flows"`
		}
		if err := json.Unmarshal([]byte(data), &b); err != nil {
			t.Fatalf("service map event %q: %v", data, err)
		}
		if len(b.Flows) > 0 {
			if !strings.Contains(string(b.Flows[0]), `"c3"`) {
				t.Errorf("the service map's flows of cluster c3 through c1's relay: %s", b.Flows[0])
			}
			return
		}
	}
	t.Fatalf("the service map of c1's relay sent no flow of cluster c3 (%v)", sc.Err())
}

// checkMeshMetrics scrapes c1-n1: every connected cluster is ready and
// was last synced in this run.
func checkMeshMetrics(t *testing.T, e *testenv.Env) {
	t.Helper()
	text := scrapeMetrics(t, e, "c1-n1")
	if problems := promtoolCheck(t, text); problems != "" {
		t.Errorf("promtool check metrics on c1-n1's /metrics:\n%s", problems)
	}
	for _, remote := range []string{"c2", "c3"} {
		if v := metricValue(t, text, `weft_clustermesh_remote_cluster_ready{remote="`+remote+`"}`); v != 1 {
			t.Errorf("c1-n1: weft_clustermesh_remote_cluster_ready{remote=%q} = %v, want 1", remote, v)
		}
		synced := time.Unix(0, int64(metricValue(t, text, `weft_clustermesh_remote_last_sync_timestamp_seconds{remote="`+remote+`"}`)*1e9))
		if age := time.Since(synced); age < 0 || age > 30*time.Minute {
			t.Errorf("c1-n1: remote %s last synced at %v (%v ago), want during this run", remote, synced, age)
		}
	}
}

// checkMeshWideObserve reads `weft observe <how>` of the mesh: the flows
// of every cluster's nodes, merged, with pods of other clusters named
// (not shown as bare addresses) on the node that observed them.
func checkMeshWideObserve(t *testing.T, e *testenv.Env, how ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	args := append([]string{"--name", e.Name, "observe", "--last", "20000", "-o", "json"}, how...)
	out, err := exec.CommandContext(ctx, binaries(t).Weft, args...).Output()
	if err != nil {
		t.Fatalf("weft observe %s: %v", strings.Join(how, " "), err)
	}
	observedIn := map[string]bool{}
	crossNamed := 0
	var last int64
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		var f struct {
			TimeNs              int64 `json:"time_ns,string"`
			Cluster             string
			Source, Destination struct {
				Cluster string `json:"cluster"`
				PodName string `json:"pod_name"`
			}
		}
		if err := json.Unmarshal([]byte(line), &f); err != nil {
			t.Fatalf("weft observe -o json line %q: %v", line, err)
		}
		if f.TimeNs < last {
			t.Errorf("flows out of time order: %d after %d", f.TimeNs, last)
		}
		last = f.TimeNs
		observedIn[f.Cluster] = true
		if f.Source.Cluster != "" && f.Destination.Cluster != "" && f.Source.Cluster != f.Destination.Cluster &&
			f.Source.PodName != "" && f.Destination.PodName != "" {
			crossNamed++
		}
	}
	for _, c := range e.Clusters {
		if !observedIn[c.Name] {
			t.Errorf("weft observe %s shows no flow observed in cluster %s (clusters seen: %v)", strings.Join(how, " "), c.Name, observedIn)
		}
	}
	if crossNamed == 0 {
		t.Errorf("weft observe %s shows no cross-cluster flow with both pods named", strings.Join(how, " "))
	}
}

// checkRelayReportsDownAgent kills an agent of c1 and reads the mesh
// through c2's relay: the agent is reported unreachable, not skipped.
func checkRelayReportsDownAgent(t *testing.T, e *testenv.Env) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := e.StopAgent(ctx, "c1-n2", syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(ctx, binaries(t).Weft, "--name", e.Name, "observe", "--relay", "c2", "--last", "5")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("weft observe --relay c2 with c1-n2 down: %v\n%s", err, stderr.String())
	}
	if !strings.Contains(stderr.String(), "node c1-n2") || !strings.Contains(stderr.String(), "unreachable") {
		t.Errorf("weft observe --relay c2 does not report c1-n2 unreachable; stderr:\n%s\nstdout:\n%s", stderr.String(), out)
	}
}

// runConnectivity runs every scenario and fails t with each failure's
// explanation.
func runConnectivity(t *testing.T, e *testenv.Env) connectivity.Report {
	t.Helper()
	rep, _ := runConnectivityProgress(t, e)
	return rep
}

// runConnectivityProgress is runConnectivity that also returns the
// progress lines the run printed.
func runConnectivityProgress(t *testing.T, e *testenv.Env) (connectivity.Report, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var out strings.Builder
	rep, err := connectivity.Run(ctx, e, connectivity.Options{Progress: &out, FlowValidation: connectivity.FlowValidationStrict})
	t.Log("\n" + out.String())
	if err != nil {
		t.Fatalf("connectivity test: %v", err)
	}
	if len(rep.Results) < 20 {
		t.Errorf("connectivity test ran %d scenarios, expected at least 20 for 3 nodes", len(rep.Results))
	}
	// The agents serve the Policy and Services APIs: their scenarios must
	// not be skipped silently, and every policy test of the catalogue runs.
	for part, want := range map[string]int{"echo-ingress/": 4, "all-ingress-deny/": 3, "client-egress-to-echo-deny/": 2,
		"-to-service/": 2, "-nodeport/": 1, "check-log-errors/": 1, "no-unexpected-packet-drops/": 1,
		"echo-ingress-l7/": 4, "client-egress-l7/": 4, "client-egress-l7-method/": 4} {
		n := 0
		for _, r := range rep.Results {
			if strings.Contains(r.Name, part) && r.Skipped == "" {
				n++
			}
		}
		if n < want {
			t.Errorf("connectivity test ran %d %s scenarios, expected at least %d (does the agent still serve the API?)", n, part, want)
		}
	}
	for _, r := range rep.Skipped() {
		if strings.Contains(r.Skipped, "Policy API") || (len(e.Clusters) > 1 && strings.Contains(r.Skipped, "several clusters")) {
			t.Errorf("test %s was skipped: %s", r.Name, r.Skipped)
		}
	}
	for _, f := range rep.Failed() {
		t.Errorf("%s: %v", f.Name, f.Err)
	}
	return rep, out.String()
}

package e2e

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/weftnet/weft/api/agentapi"
	"github.com/weftnet/weft/internal/namedns"
	"github.com/weftnet/weft/testenv"
)

// TestConnectivityHosts: `weft connectivity test --agent <node>=<socket>`
// against three standalone hosts brought up as docs/deploy-hosts.md says
// (TestSystemdUnits' path: embedded store, units' command lines, config
// files, fresh hosts), each node's CNI configuration being the installed
// deploy/config/10-weft.conflist. The test pods are created by the agents
// (Connectivity API); the run passes with the cross-node, policy and
// service scenarios run, not skipped, and the outside scenarios skipped
// with their reason. A second CreateTestPod reuses the pod; --delete-pods
// leaves no namespace behind. Bad --agent values, a stopped agent (no
// socket) and a killed one (a socket nothing answers) fail the run with
// messages naming what is wrong.
func TestConnectivityHosts(t *testing.T) {
	spec := testenv.DefaultSpec()
	spec.Nodes = 3
	spec.NoAgents = true
	e := up(t, "cxhosts", spec)
	binDir := filepath.Dir(e.Bin.Agent)
	apiserverBinary(t, binDir)
	t.Cleanup(func() { removeTestPodNetNS(t, e) }) // before Down, after a failure too
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()

	meshDir := standaloneAPIServer(ctx, t, e, binDir)
	deployConflist, err := os.ReadFile("../deploy/config/10-weft.conflist")
	if err != nil {
		t.Fatal(err)
	}
	var agents []string
	for _, n := range e.Nodes {
		// The agent runs in the node's cgroup, where it attaches the
		// socket load balancer (on a host: the root cgroup, which holds
		// every process).
		args := append([]string{"sh", "-c", `echo $$ > "$0/cgroup.procs" && exec "$@"`, n.Cgroup}, standaloneAgent(t, e, n, binDir, meshDir)...)
		if _, err := e.StartDaemon(args, n.NetNS, n.Log, n.PIDFile); err != nil {
			t.Fatal(err)
		}
		// The node's installed CNI configuration, its agent socket being
		// where this node's agent listens.
		conf := strings.ReplaceAll(string(deployConflist), agentapi.DefaultSocket, n.Socket)
		if conf == string(deployConflist) {
			t.Fatalf("deploy/config/10-weft.conflist does not name the agent socket %s", agentapi.DefaultSocket)
		}
		dir := filepath.Join(e.Dir, "cni", n.Name)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "10-weft.conflist"), []byte(conf), 0o644); err != nil {
			t.Fatal(err)
		}
		agents = append(agents, "--agent", n.Name+"="+n.Socket)
	}
	for _, n := range e.Nodes {
		if err := e.WaitAgent(ctx, n.Name, 2*time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	cni := []string{"--cni-bin-dir", binDir, "--cni-conflist", filepath.Join(e.Dir, "cni", "{node}", "10-weft.conflist")}
	weft := func(args ...string) (string, string, error) {
		cmd := exec.CommandContext(ctx, e.Bin.Weft, args...)
		var stdout, stderr strings.Builder
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		return stdout.String(), stderr.String(), err
	}

	// The whole catalogue, strict flow validation, one JSON object per
	// scenario on stdout.
	args := append(append([]string{"connectivity", "test", "-o", "json", "--flow-validation", "strict"}, agents...), cni...)
	stdout, stderr, err := weft(args...)
	t.Logf("weft %s:\n%s", strings.Join(args, " "), stderr)
	if err != nil {
		t.Fatalf("weft connectivity test on standalone hosts: %v\n%s", err, stdout)
	}
	needsOutside := map[string]bool{"no-policies/pod-to-world": true, "allow-all-except-world": true, "to-entities-world": true,
		"to-cidr-external": true, "to-cidr-external-knp": true, "client-egress-to-cidr-deny": true}
	results := map[string][]string{} // by result: names
	for _, line := range strings.Split(strings.TrimSpace(stdout), "\n") {
		var r struct{ Name, Result, Reason string }
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("result line %q: %v", line, err)
		}
		results[r.Result] = append(results[r.Result], r.Name)
		if needsOutside[r.Name] && (r.Result != "skipped" || !strings.Contains(r.Reason, "outside server")) {
			t.Errorf("%s: %s %q, want it skipped for the outside server", r.Name, r.Result, r.Reason)
		}
	}
	for _, want := range []struct{ result, name string }{
		{"success", "no-policies/pod-to-pod/cross-node/tcp/cx-c1-n1-a->cx-c1-n2-a"},
		{"success", "no-policies/pod-to-pod/cross-node/udp/cx-c1-n3-a->cx-c1-n1-a"},
		{"success", "no-policies/pod-to-pod/cross-node/icmp/cx-c1-n2-a->cx-c1-n3-a"},
		{"success", "no-policies/pod-to-service/clusterip/tcp/cx-c1-n1-a"},
		{"success", "no-policies/host-to-service/clusterip/tcp/c1-n3"},
		{"success", "no-policies-extra/node-to-remote-nodeport/tcp/c1-n2->c1-n1"},
		{"success", "pod-mtu/tcp-1MiB/cx-c1-n1-a->cx-c1-n2-a"},
		{"success", "echo-ingress/pod-to-pod-denied-label/tcp/cx-c1-n1-x->cx-c1-n3-p"},
		{"success", "all-ingress-deny/pod-to-pod/tcp/cx-c1-n1-a->cx-c1-n3-p"},
		{"success", "client-egress/pod-to-pod-denied-port/udp/"},
		{"success", "no-unexpected-packet-drops/c1-n2"},
		{"skipped", "no-policies/pod-to-world"},
		{"skipped", "to-entities-world"},
		{"skipped", "check-log-errors"},
	} {
		found := false
		for _, name := range results[want.result] {
			found = found || strings.HasPrefix(name, want.name)
		}
		if !found {
			t.Errorf("no %s result %s…; results: %v", want.result, want.name, results)
		}
	}
	if len(results["failure"]) > 0 || len(results["success"]) < 60 {
		t.Errorf("%d scenarios succeeded, failed: %v", len(results["success"]), results["failure"])
	}

	// The agent reuses a test pod (the run's), and refuses a real pod's name.
	conn, err := grpc.NewClient("unix://"+e.Nodes[0].Socket, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	cx := agentapi.NewConnectivityClient(conn)
	p, err := cx.CreateTestPod(ctx, &agentapi.CreateTestPodRequest{Name: "cx-c1-n1-a", CniBinDir: binDir,
		CniConflist: filepath.Join(e.Dir, "cni", "c1-n1", "10-weft.conflist"), Labels: map[string]string{"app": "weft-connectivity"}})
	if err != nil || p.Created || p.Ip == "" {
		t.Errorf("CreateTestPod of an existing test pod: %v, %v; want it reused (created false, its address)", p, err)
	}
	if _, err := cx.DeleteTestPod(ctx, &agentapi.DeleteTestPodRequest{Name: "web"}); err == nil || !strings.Contains(err.Error(), "never touches a real pod") {
		t.Errorf("DeleteTestPod web: %v, want a refusal", err)
	}

	// Bad --agent values, before anything runs.
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no '='", []string{"--agent", e.Nodes[0].Socket}, "give <node>=<agent socket>"},
		{"missing socket", []string{"--agent", "c1-n1=/nonexistent/agent.sock"}, "no agent socket at /nonexistent/agent.sock"},
		{"node twice", []string{"--agent", "c1-n1=" + e.Nodes[0].Socket, "--agent", "c1-n1=" + e.Nodes[1].Socket}, "node c1-n1 is already given"},
		{"wrong node", []string{"--agent", "c1-n2=" + e.Nodes[0].Socket}, "is node c1-n1's, not c1-n2's"},
		{"with --name", []string{"--name", "x", "--agent", "c1-n1=" + e.Nodes[0].Socket}, "give either a testenv environment"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, stderr, err := weft(append([]string{"connectivity", "test"}, tc.args...)...)
			if err == nil || !strings.Contains(stderr, tc.want) {
				t.Errorf("weft connectivity test %v: %v, stderr:\n%s\nwant a failure saying %q", tc.args, err, stderr, tc.want)
			}
		})
	}

	// --delete-pods removes every test pod: no namespace is left.
	args = append(append([]string{"connectivity", "test", "--test", "cross-node/tcp", "--delete-pods"}, agents...), cni...)
	if stdout, stderr, err := weft(args...); err != nil {
		t.Fatalf("weft %s: %v\n%s%s", strings.Join(args, " "), err, stdout, stderr)
	}
	if left := testPodNetNS(e); len(left) > 0 {
		t.Errorf("test pod namespaces left after --delete-pods: %v", left)
	}
	for _, n := range e.Nodes {
		if ents, _ := os.ReadDir(filepath.Join(n.Dir, "connectivity")); len(ents) > 1 { // cni-cache only
			t.Errorf("node %s keeps test pod records after --delete-pods: %v", n.Name, ents)
		}
	}

	// A host whose agent is stopped fails the run, naming it.
	if err := e.StopAgent(ctx, "c1-n3", syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	args = append(append([]string{"connectivity", "test"}, agents...), cni...)
	_, stderr, err = weft(args...)
	t.Logf("with the agent of c1-n3 stopped: %v\n%s", err, stderr)
	if err == nil || !strings.Contains(stderr, "no agent socket at "+e.Nodes[2].Socket) {
		t.Errorf("weft connectivity test with the agent of c1-n3 stopped: %v, stderr:\n%s\nwant a failure naming c1-n3's socket", err, stderr)
	}
	// A killed agent leaves its socket, which nothing answers.
	if err := e.StopAgent(ctx, "c1-n2", syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	args = append([]string{"connectivity", "test"}, agents[:4]...)
	_, stderr, err = weft(args...)
	t.Logf("with the agent of c1-n2 killed: %v\n%s", err, stderr)
	if err == nil || !strings.Contains(stderr, "reach the agent of c1-n2 at "+e.Nodes[1].Socket) {
		t.Errorf("weft connectivity test with the agent of c1-n2 killed: %v, stderr:\n%s\nwant a failure saying c1-n2's agent does not answer", err, stderr)
	}
}

// testPodNetNS lists the test pods' namespaces of e's nodes
// (weft-<node>-cx-…).
func testPodNetNS(e *testenv.Env) []string {
	var out []string
	ents, _ := os.ReadDir(namedns.Dir)
	for _, ent := range ents {
		for _, n := range e.Nodes {
			if strings.HasPrefix(ent.Name(), "weft-"+n.Name+"-cx-") {
				out = append(out, ent.Name())
			}
		}
	}
	return out
}

// removeTestPodNetNS removes what test pods a failed run left (their
// namespaces live in the agents' mount namespaces; the files stay here).
func removeTestPodNetNS(t *testing.T, e *testenv.Env) {
	for _, name := range testPodNetNS(e) {
		// Mounted in an agent's mount namespace, a plain file here.
		if err := namedns.Delete(name); err != nil {
			t.Errorf("remove test pod namespace: %v", err)
		}
	}
}

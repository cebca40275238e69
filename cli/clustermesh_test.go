package cli

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/weftnet/weft/api/adminapi"
	"github.com/weftnet/weft/api/agentapi"
	"github.com/weftnet/weft/clustermesh/apiserver/apiservertest"
)

// meshState is what the clusters' apiservers report: their remotes and
// readers, and the files of the root directory.
func meshState(t *testing.T, root string, cs ...*apiservertest.Cluster) string {
	t.Helper()
	var out []string
	for _, c := range cs {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		l, err := c.Admin(t).ListRemotes(ctx, &adminapi.ListRemotesRequest{})
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, r := range l.Remotes {
			names = append(names, r.Name)
		}
		out = append(out, c.Name+": remotes "+strings.Join(names, ",")+" readers "+strings.Join(l.Readers, ","))
	}
	filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err == nil && !strings.Contains(p, "/etcd/") && !strings.HasSuffix(p, ".sock") {
			out = append(out, p)
		}
		return nil
	})
	slices.Sort(out)
	return strings.Join(out, "\n")
}

// TestClusterMeshCommands: every subcommand with bad input fails with an
// error that says what was wrong, and changes nothing; good input connects,
// is idempotent, shows up in status, and disconnects.
func TestClusterMeshCommands(t *testing.T) {
	root := shortTempDir(t)
	c1 := apiservertest.Start(t, "c1", 1, apiservertest.Options{Root: root})
	c2 := apiservertest.Start(t, "c2", 2, apiservertest.Options{Root: root})
	c3 := apiservertest.Start(t, "c3", 2, apiservertest.Options{Root: root, PodCIDR: "10.120.0.0/16"})
	c4 := apiservertest.Start(t, "c4", 4, apiservertest.Options{Root: root, Routing: "native", PodCIDR: "10.104.0.0/16"})
	c5 := apiservertest.Start(t, "c5", 5, apiservertest.Options{Root: root, PodCIDR: "10.100.128.0/17"})
	all := []*apiservertest.Cluster{c1, c2, c3, c4, c5}
	socket := filepath.Join(root, "agent.sock")
	agent := testAgent("n1")
	agent.status.Cluster = "c1"
	agent.status.RemoteClusters = []*agentapi.RemoteCluster{{Name: "c2", Connected: true, Synced: true, Nodes: 2, Endpoints: 7}}
	serve(t, socket, agent)
	mesh := func(args ...string) result {
		return runCLI(t, t.TempDir(), nil, append([]string{"--socket", socket, "clustermesh", "--dir", root}, args...)...)
	}

	if r := mesh("connect", "c1", "c2"); r.err != nil {
		t.Fatalf("connect c1 c2: %v\n%s", r.err, r.stdout)
	} else if !strings.Contains(r.stdout, "c1: connects to c2") || !strings.Contains(r.stdout, "c2: connects to c1") {
		t.Fatalf("connect c1 c2 printed:\n%s", r.stdout)
	}
	if r := mesh("connect", "c2", "c1"); r.err != nil || !strings.Contains(r.stdout, "already connected") {
		t.Fatalf("connect again: %v\n%s", r.err, r.stdout)
	}
	before := meshState(t, root, all...)
	if !strings.Contains(before, "c1: remotes c2 readers c2") {
		t.Fatalf("after connect:\n%s", before)
	}

	bad := []struct {
		name string
		args []string
		want string
	}{
		{"connect one", []string{"connect", "c1"}, "give exactly two clusters"},
		{"connect itself", []string{"connect", "c1", "c1"}, "named twice"},
		{"connect unknown", []string{"connect", "c1", "nope"}, "no clustermesh directory"},
		{"connect bad name", []string{"connect", "c1", "Bad_Name"}, "lowercase DNS label"},
		{"connect long name", []string{"connect", "c1", strings.Repeat("x", 33)}, "1 to 32 characters"},
		{"connect duplicate id", []string{"connect", "c1", "c3"}, "cluster id 2 is already used by c2"},
		{"connect same id", []string{"connect", "c2", "c3"}, "both have cluster id 2"},
		{"connect routing differs", []string{"connect", "c1", "c4"}, "routing modes differ"},
		{"connect cidrs overlap", []string{"connect", "c1", "c5"}, "pod CIDRs overlap"},
		{"mesh one", []string{"connect", "--mesh", "c1"}, "two or more"},
		{"mesh overlap", []string{"connect", "--mesh", "c4", "c1", "c5"}, "routing modes differ"},
		{"disconnect one", []string{"disconnect", "c1"}, "give exactly two clusters"},
		{"disconnect itself", []string{"disconnect", "c1", "c1"}, "from itself"},
		{"disconnect unknown", []string{"disconnect", "c1", "nope"}, "no clustermesh directory"},
		{"status unknown", []string{"status", "nope"}, "no clustermesh directory"},
		{"status bad name", []string{"status", "x-"}, "lowercase DNS label"},
		{"status bad wait duration", []string{"status", "c1", "--wait", "--wait-duration", "0s"}, "--wait-duration 0s: give a positive duration"},
		{"enable bad name", []string{"enable", "Bad_Name"}, "lowercase DNS label"},
		{"enable default", []string{"enable", "default"}, `cluster name "default": invalid record: reserved for a cluster outside any mesh`},
		{"connect default", []string{"connect", "c1", "default"}, `cluster name "default": invalid record: reserved`},
		{"enable id 0", []string{"enable", "c9", "--cluster-id", "0"}, "accepted is 1 to 255"},
		{"enable id 256", []string{"enable", "c9", "--cluster-id", "256"}, "accepted is 1 to 255"},
		{"enable routing", []string{"enable", "c9", "--cluster-id", "9", "--routing-mode", "bgp"}, `routing mode "bgp"`},
		{"enable pool", []string{"enable", "c9", "--cluster-id", "9", "--pod-cidr-pool", "10.1.2.3/16"}, "--pod-cidr-pool"},
		{"enable plaintext store", []string{"enable", "c9", "--cluster-id", "9", "--store-listen", "http://127.0.0.1:2381"}, "accepted is https://"},
		{"enable another's directory", []string{"enable", "c1", "--cluster-id", "7"}, "already belongs to cluster c1"},
		{"enable no name", []string{"enable"}, "give the cluster's name (or --context"},
		{"enable global", []string{"enable", "c9", "--cluster-id", "9", "--global-cidr", "242.9.0.0"}, "--global-cidr"},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			r := mesh(tc.args...)
			if r.err == nil || !strings.Contains(r.err.Error(), tc.want) {
				t.Fatalf("weft clustermesh %s: error %v, want one containing %q\n%s", strings.Join(tc.args, " "), r.err, tc.want, r.stdout)
			}
			if after := meshState(t, root, all...); after != before {
				t.Fatalf("weft clustermesh %s changed something:\nbefore:\n%s\nafter:\n%s", strings.Join(tc.args, " "), before, after)
			}
		})
	}

	r := mesh("status", "c1", "c2")
	if r.err != nil {
		t.Fatalf("status: %v\n%s", r.err, r.stdout)
	}
	for _, want := range []string{"c1        1    tunnel", "n1     c1        c2       yes         yes      2       7"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("status lacks %q:\n%s", want, r.stdout)
		}
	}
	if r := mesh("status", "c1", "-o", "json"); r.err != nil || !strings.Contains(r.stdout, `"pod_cidrs": [`) || strings.Contains(r.stdout, "podCIDRs") {
		t.Errorf("status -o json uses snake_case names like every other command: %v\n%s", r.err, r.stdout)
	}
	agent.status.RemoteClusters[0].Connected, agent.status.RemoteClusters[0].Error = false, "dial tcp: connection refused"
	if r := mesh("status", "c1"); r.err == nil || !strings.Contains(r.stdout, "hint:") {
		t.Errorf("status with a disconnected remote: %v\n%s", r.err, r.stdout)
	}
	// --wait polls (here for 1.5 s, in vain) before it fails; a remote that
	// comes back while it polls makes it succeed.
	start := time.Now()
	if r := mesh("status", "c1", "--wait", "--wait-duration", "1500ms"); r.err == nil || time.Since(start) < 1500*time.Millisecond {
		t.Errorf("status --wait with a disconnected remote: %v after %v", r.err, time.Since(start))
	}
	agent.mu.Lock()
	agent.reconnectAt = agent.statusCalls + 3 // the remote is back on the third poll
	agent.mu.Unlock()
	if r := mesh("status", "c1", "--wait", "--wait-duration", "1m"); r.err != nil {
		t.Errorf("status --wait with a remote that reconnects: %v\n%s", r.err, r.stdout)
	}

	if r := mesh("disconnect", "c1", "c2"); r.err != nil || !strings.Contains(r.stdout, "c1: disconnected from c2") {
		t.Fatalf("disconnect: %v\n%s", r.err, r.stdout)
	}
	if r := mesh("disconnect", "c1", "c2"); r.err != nil || !strings.Contains(r.stdout, "was not connected") {
		t.Fatalf("disconnect again: %v\n%s", r.err, r.stdout)
	}
	if r := mesh("connect", "--mesh", "c1", "c2"); r.err != nil {
		t.Fatalf("connect --mesh: %v\n%s", r.err, r.stdout)
	}
}

// TestClusterMeshEnable: enable writes a directory weft-apiserver accepts,
// and is idempotent.
func TestClusterMeshEnable(t *testing.T) {
	root := shortTempDir(t)
	args := []string{"clustermesh", "--dir", root, "enable", "west", "--cluster-id", "7", "--pod-cidr-pool", "10.107.0.0/16",
		"--store-listen", "https://10.0.0.5:2381", "--kvstore-endpoints", "http://10.0.0.5:2379"}
	r := runCLI(t, t.TempDir(), nil, args...)
	if r.err != nil {
		t.Fatalf("enable: %v\n%s", r.err, r.stdout)
	}
	for _, f := range []string{"ca.crt", "ca.key", "server.crt", "admin.crt", "root.crt", "agent.crt", "apiserver.json"} {
		if _, err := os.Stat(filepath.Join(root, "west", f)); err != nil {
			t.Errorf("enable did not create %s: %v", f, err)
		}
	}
	if !strings.Contains(r.stdout, "serving [10.0.0.5 127.0.0.1 localhost]") {
		t.Errorf("enable printed:\n%s", r.stdout)
	}
	r = runCLI(t, t.TempDir(), nil, args...)
	if r.err != nil || !strings.Contains(r.stdout, "CA of west: kept") || !strings.Contains(r.stdout, "unchanged") {
		t.Fatalf("enable again: %v\n%s", r.err, r.stdout)
	}
	// --global-cidr reaches the apiserver's configuration.
	r = runCLI(t, t.TempDir(), nil, append(args, "--global-cidr", "242.7.0.0/16")...)
	if r.err != nil {
		t.Fatalf("enable --global-cidr: %v\n%s", r.err, r.stdout)
	}
	if raw, err := os.ReadFile(filepath.Join(root, "west", "apiserver.json")); err != nil || !strings.Contains(string(raw), `"global-cidr": "242.7.0.0/16"`) {
		t.Errorf("apiserver.json after enable --global-cidr: %s (%v)", raw, err)
	}
}

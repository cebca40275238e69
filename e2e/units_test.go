package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/weftnet/weft/clustermesh"
	"github.com/weftnet/weft/internal/hosttest"
	"github.com/weftnet/weft/testenv"
)

// Where the units and config examples live, relative to this package.
const (
	unitDir   = "../deploy/systemd"
	configDir = "../deploy/config"
)

// execStart is the unit's ExecStart command line, checked to be
// "<bindir>/<program> --config /etc/weft/<file>" as docs/deploy-hosts.md
// says, with the program taken from binDir and the config file replaced
// by config.
func execStart(t *testing.T, unit, binDir, config string) []string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(unitDir, unit))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(raw), "\n") {
		cmd, ok := strings.CutPrefix(line, "ExecStart=")
		if !ok {
			continue
		}
		args := strings.Fields(cmd)
		if len(args) != 3 || args[1] != "--config" || !strings.HasPrefix(args[2], "/etc/weft/") || !strings.HasPrefix(args[0], "/usr/local/bin/") {
			t.Fatalf("%s: ExecStart=%s, want /usr/local/bin/<program> --config /etc/weft/<file>", unit, cmd)
		}
		return []string{filepath.Join(binDir, filepath.Base(args[0])), args[1], config}
	}
	t.Fatalf("%s: no ExecStart line", unit)
	return nil
}

// agentConfig is deploy/config/agent.yaml with the given keys replaced
// (keys the example sets, or shows commented out as defaults), written to
// path.
func agentConfig(t *testing.T, path string, set map[string]any) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(configDir, "agent.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := map[string]any{}
	if err := yaml.Unmarshal(raw, &cfg); err != nil {
		t.Fatalf("parse the agent config example: %v", err)
	}
	for k, v := range set {
		if _, ok := cfg[k]; !ok && !strings.Contains(string(raw), "\n# "+k+": ") {
			t.Fatalf("key %q is not in the agent config example", k)
		}
		cfg[k] = v
	}
	out, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, out, 0o644); err != nil {
		t.Fatal(err)
	}
}

var apiserverBuild struct {
	once sync.Once
	err  error
}

// apiserverBinary adds weft-apiserver to the run's binaries.
func apiserverBinary(t *testing.T, dir string) {
	t.Helper()
	apiserverBuild.once.Do(func() {
		out, err := exec.Command(goBinary(), "build", "-o", dir+"/", "github.com/weftnet/weft/cmd/weft-apiserver").CombinedOutput()
		if err != nil {
			apiserverBuild.err = fmt.Errorf("go build weft-apiserver: %w: %s", err, out)
		}
	})
	if apiserverBuild.err != nil {
		t.Fatal(apiserverBuild.err)
	}
}

// TestSystemdUnits: the path of docs/deploy-hosts.md on two node
// namespaces. `weft clustermesh enable --embedded-store` sets up the
// cluster; weft-apiserver runs with the command line of its unit, and one
// weft-agent per node with the command line of its unit and a config file
// made from deploy/config/agent.yaml, each agent on a "fresh host": a
// mount namespace of its own without bpffs, which it mounts itself.
// `weft-agent --preflight` there reports the missing bpffs with its fix and
// everything else OK; the agents come up; a pod on each node reaches the
// other.
func TestSystemdUnits(t *testing.T) {
	spec := testenv.DefaultSpec()
	spec.NoAgents = true
	e := up(t, "units", spec)
	binDir := filepath.Dir(e.Bin.Agent)
	apiserverBinary(t, binDir)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()

	meshDir := standaloneAPIServer(ctx, t, e, binDir)

	// One agent per node, each alone on a host without bpffs.
	for _, n := range e.Nodes {
		fresh := standaloneAgent(t, e, n, binDir, meshDir)

		pf := filepath.Join(n.Dir, "preflight.log")
		if _, err := e.StartDaemon(append(fresh, "--preflight"), n.NetNS, pf, filepath.Join(n.Dir, "preflight.pid")); err != nil {
			t.Fatal(err)
		}
		out := waitOutput(t, filepath.Join(n.Dir, "preflight.pid"), pf)
		t.Logf("weft-agent --preflight on %s, a host without bpffs:\n%s", n.Name, out)
		for _, want := range []string{"bpffs       FAIL", "fix: weft-agent mounts it at start; to mount it now: mount -t bpf bpf /sys/fs/bpf", "kvstore     OK", "1 check(s) failed"} {
			if !strings.Contains(out, want) {
				t.Errorf("weft-agent --preflight on %s without bpffs: no %q in\n%s", n.Name, want, out)
			}
		}
		if _, err := e.StartDaemon(fresh, n.NetNS, n.Log, n.PIDFile); err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range e.Nodes {
		if err := e.WaitAgent(ctx, n.Name, 2*time.Minute); err != nil {
			t.Fatal(err)
		}
	}

	a, err := e.AddPod(ctx, testenv.PodSpec{Name: "a", Node: "c1-n1"})
	if err != nil {
		t.Fatal(err)
	}
	b, err := e.AddPod(ctx, testenv.PodSpec{Name: "b", Node: "c1-n2"})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range [][2]testenv.Pod{{a, b}, {b, a}} {
		tg, err := e.Target("pod/" + p[0].Name)
		if err != nil {
			t.Fatal(err)
		}
		eventually(t, time.Minute, fmt.Sprintf("pod %s reaches pod %s (%s)", p[0].Name, p[1].Name, p[1].IP), func() error {
			_, err := tg.Output(ctx, "ping", "-c", "1", "-W", "2", p[1].IP)
			return err
		})
	}
}

// standaloneAPIServer is the apiserver host of docs/deploy-hosts.md for
// cluster c1 of e: `weft clustermesh enable --embedded-store`, then
// weft-apiserver with its unit's command line, in the underlay namespace.
// It returns the cluster's mesh directory (CA and agent credentials).
func standaloneAPIServer(ctx context.Context, t *testing.T, e *testenv.Env, binDir string) string {
	t.Helper()
	storeIP := "192.168.0.11" // the cluster's address on the underlay (testenv)
	meshDir := filepath.Join(e.MeshRoot(), "c1")
	enable := exec.CommandContext(ctx, e.Bin.Weft, "clustermesh", "enable", "c1", "--dir", e.MeshRoot(),
		"--cluster-id", "1", "--embedded-store", "--pod-cidr-pool", e.Clusters[0].PodCIDRPool,
		"--store-listen", "https://"+storeIP+":2381", "--metrics-listen", storeIP+":9962",
		"--admin-listen", storeIP+":2383,unix://"+filepath.Join(meshDir, clustermesh.AdminSocket))
	if out, err := enable.CombinedOutput(); err != nil {
		t.Fatalf("weft clustermesh enable: %v\n%s", err, out)
	}
	etc := filepath.Join(e.Dir, "etc-weft") // stands for /etc/weft
	if err := os.MkdirAll(etc, 0o755); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(meshDir, clustermesh.ConfigFile))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(etc, "apiserver.yaml"), raw, 0o644); err != nil {
		t.Fatal(err)
	}
	args := execStart(t, "weft-apiserver.service", binDir, filepath.Join(etc, "apiserver.yaml"))
	if _, err := e.StartDaemon(args, e.Underlay, filepath.Join(meshDir, "apiserver.log"), filepath.Join(meshDir, "apiserver.pid")); err != nil {
		t.Fatal(err)
	}
	if err := e.WaitAPIServer(ctx, "c1", time.Minute); err != nil {
		t.Fatal(err)
	}
	return meshDir
}

// standaloneAgent writes node n's agent config (deploy/config/agent.yaml
// with the node's values, the store of standaloneAPIServer) and returns
// the command line of weft-agent's unit run on a "fresh host": a mount
// namespace of its own without bpffs.
func standaloneAgent(t *testing.T, e *testenv.Env, n testenv.Node, binDir, meshDir string) []string {
	t.Helper()
	conf := filepath.Join(n.Dir, "agent.yaml")
	agentConfig(t, conf, map[string]any{
		"node-name": n.Name, "node-ip": n.IP, "pod-cidr-pool": []string{e.Clusters[0].PodCIDRPool},
		"kvstore-endpoints": []string{"https://192.168.0.11:2381"},
		"kvstore-ca-file":   filepath.Join(meshDir, "ca.crt"),
		"kvstore-cert-file": filepath.Join(meshDir, "agent.crt"),
		"kvstore-key-file":  filepath.Join(meshDir, "agent.key"),
		"state-dir":         n.Dir, "socket": n.Socket, "cgroup-path": n.Cgroup,
	})
	args := execStart(t, "weft-agent.service", binDir, conf)
	return append([]string{"unshare", "-m", "--propagation", "private", "sh", "-c", hosttest.UnshareScript + `exec "$@"`, "sh"}, args...)
}

// waitOutput waits for the process of pidFile to end and returns its log.
func waitOutput(t *testing.T, pidFile, log string) string {
	t.Helper()
	eventually(t, time.Minute, "the process of "+pidFile+" ends", func() error {
		raw, err := os.ReadFile(pidFile)
		if err != nil {
			return err
		}
		if _, err := os.Stat("/proc/" + strings.TrimSpace(string(raw))); err == nil {
			return fmt.Errorf("pid %s still runs", strings.TrimSpace(string(raw)))
		}
		return nil
	})
	out, err := os.ReadFile(log)
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

package cni

import (
	"bytes"
	"context"
	"crypto/sha512"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/plugins/pkg/ns"

	"github.com/weftnet/weft/internal/testgate"
	"github.com/weftnet/weft/internal/toolcache"
)

// The upstream cnitool drives the real weft-cni binary: ADD, CHECK, STATUS,
// DEL and DEL again, with labels and port mappings passed as capabilities.
func TestCNIToolAddCheckDel(t *testing.T) {
	hostNS, podNS := newNS(t), newNS(t)
	agent := startStandIn(t)
	tool := newCNITool(t)
	netName := tool.writeConf(t, map[string]any{
		"type": "weft-cni", "agentSocket": agent.socket, "logFile": filepath.Join(tool.confDir, "weft-cni.log"),
		"capabilities": map[string]bool{"labels": true, "portMappings": true},
	})
	env := []string{
		"CNI_ARGS=K8S_POD_NAMESPACE=shop;K8S_POD_NAME=web-1",
		`CAP_ARGS={"labels": {"app": "web"}, "portMappings": [{"hostPort": 8080, "containerPort": 80, "protocol": "tcp"}]}`,
	}

	out := tool.run(t, hostNS, env, "add", netName, podNS.Path())
	var res current.Result
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("decode cnitool add output %q: %v", out, err)
	}
	// cnitool names the container after the netns path.
	sum := sha512.Sum512([]byte(podNS.Path()))
	cid := fmt.Sprintf("cnitool-%x", sum[:10])
	hostName := HostIfName(cid, "eth0")
	if len(res.Interfaces) != 2 || res.Interfaces[0].Name != hostName || res.Interfaces[1].Sandbox != podNS.Path() ||
		len(res.IPs) != 1 || res.IPs[0].Address.String() != "10.100.7.10/32" {
		t.Errorf("cnitool add result = %s", out)
	}
	pod := links(t, podNS)["eth0"]
	if !slices.Equal(pod.Addrs, []string{"10.100.7.10/32"}) || pod.MTU != standInMTU ||
		!slices.Contains(pod.Routes, "0.0.0.0/0 via "+standInGateway) {
		t.Errorf("pod eth0 after cnitool add = %+v", pod)
	}
	if got := lxcLinks(t, hostNS); !slices.Equal(got, []string{hostName}) {
		t.Errorf("host veths = %v, want [%s]", got, hostName)
	}
	req := agent.lastCreate()
	if req.GetNamespace() != "shop" || req.GetPodName() != "web-1" || req.GetLabels()["app"] != "web" ||
		len(req.GetPortMappings()) != 1 || req.GetPortMappings()[0].GetContainerPort() != 80 {
		t.Errorf("CreateEndpoint request from cnitool = %v", req)
	}

	tool.run(t, hostNS, env, "check", netName, podNS.Path())
	tool.run(t, hostNS, env, "status", netName, podNS.Path())
	tool.run(t, hostNS, env, "del", netName, podNS.Path())
	tool.run(t, hostNS, env, "del", netName, podNS.Path())
	assertNothingLeft(t, hostNS, podNS, agent)

	log, err := os.ReadFile(filepath.Join(tool.confDir, "weft-cni.log"))
	if err != nil {
		t.Fatalf("read plugin log: %v", err)
	}
	for _, want := range []string{"command=ADD", "msg=\"added endpoint\"", "command=DEL", "msg=\"deleted endpoint\""} {
		if !strings.Contains(string(log), want) {
			t.Errorf("plugin log lacks %q:\n%s", want, log)
		}
	}
}

// ADD through cnitool with a configuration the plugin refuses fails with the
// plugin's message and leaves no veth, address or endpoint behind.
func TestCNIToolMalformedConfig(t *testing.T) {
	hostNS := newNS(t)
	agent := startStandIn(t)
	tool := newCNITool(t)
	for _, tc := range []struct {
		name   string
		plugin map[string]any
		want   string
	}{
		{"no agentSocket", map[string]any{"type": "weft-cni"}, "network config has no agentSocket"},
		{"agentSocket a number", map[string]any{"type": "weft-cni", "agentSocket": 42}, `field "agentSocket" is a JSON number`},
		{"relative logFile", map[string]any{"type": "weft-cni", "agentSocket": agent.socket, "logFile": "x.log"}, `logFile "x.log" is not an absolute path`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			podNS := newNS(t)
			netName := tool.writeConf(t, tc.plugin)
			_, stderr, err := tool.exec(t, hostNS, nil, "add", netName, podNS.Path())
			if err == nil || !strings.Contains(stderr, tc.want) {
				t.Errorf("cnitool add = %v, stderr %q; want a failure saying %q", err, stderr, tc.want)
			}
			assertNothingLeft(t, hostNS, podNS, agent)
		})
	}
	if n := len(agent.endpointKeys()); n != 0 {
		t.Errorf("agent has %d endpoints, want 0", n)
	}
}

// cniTool runs the cached upstream cnitool against a freshly built weft-cni.
type cniTool struct {
	path    string // cnitool binary
	binDir  string // CNI_PATH: holds weft-cni
	confDir string // NETCONFPATH
}

func newCNITool(t *testing.T) *cniTool {
	t.Helper()
	testgate.Root(t)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Minute)
	defer cancel()
	path, err := toolcache.Ensure(ctx, toolcache.CNITool(), os.Stderr)
	if err != nil {
		t.Fatalf("get cnitool: %v", err)
	}
	binDir := t.TempDir()
	build := exec.CommandContext(ctx, goBinary(), "build", "-o", filepath.Join(binDir, "weft-cni"), "github.com/weftnet/weft/cmd/weft-cni")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build weft-cni: %v\n%s", err, out)
	}
	return &cniTool{path: path, binDir: binDir, confDir: t.TempDir()}
}

// writeConf writes a network list with one plugin under a unique network
// name and returns the name. libcni's result cache for it is removed when
// the test ends.
func (c *cniTool) writeConf(t *testing.T, plugin map[string]any) string {
	t.Helper()
	name := "weftcni-" + randomID(t)
	list := map[string]any{"cniVersion": "1.1.0", "name": name, "plugins": []any{plugin}}
	b, err := json.Marshal(list)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(c.confDir, name+".conflist"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cached, _ := filepath.Glob(filepath.Join("/var/lib/cni/results", name+"-*"))
		for _, f := range cached {
			os.Remove(f)
		}
	})
	return name
}

// run runs cnitool inside hostNS (the node) and fails the test unless it
// succeeds; it returns stdout.
func (c *cniTool) run(t *testing.T, hostNS ns.NetNS, env []string, args ...string) string {
	t.Helper()
	stdout, stderr, err := c.exec(t, hostNS, env, args...)
	if err != nil {
		t.Fatalf("cnitool %s: %v\nstdout: %s\nstderr: %s", strings.Join(args, " "), err, stdout, stderr)
	}
	return stdout
}

func (c *cniTool) exec(t *testing.T, hostNS ns.NetNS, env []string, args ...string) (string, string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, c.path, args...)
	cmd.Env = append(os.Environ(), append([]string{"CNI_PATH=" + c.binDir, "NETCONFPATH=" + c.confDir, "CNI_IFNAME=eth0"}, env...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	// The child inherits the namespace of the locked thread that starts it.
	err := hostNS.Do(func(ns.NetNS) error { return cmd.Run() })
	return stdout.String(), stderr.String(), err
}

func goBinary() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return "/usr/local/go/bin/go"
}

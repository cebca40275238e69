package e2e

import (
	"context"
	"encoding/json"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/weftnet/weft/api/agentapi"
	"github.com/weftnet/weft/testenv"
)

// TestCNItool drives weft-cni with the reference runtime client cnitool
// against a real agent: ADD wires a namespace that another node's pod
// reaches, CHECK passes, DEL removes the endpoint and the veth, and a second
// DEL succeeds.
func TestCNItool(t *testing.T) {
	e := up(t, "cnitool", testenv.DefaultSpec())
	ctx := context.Background()
	node, err := e.Node("c1-n1")
	if err != nil {
		t.Fatal(err)
	}
	confDir := t.TempDir()
	if err := os.WriteFile(filepath.Join(confDir, "10-weft.conf"), node.CNIConfig(), 0o644); err != nil {
		t.Fatal(err)
	}
	ns := "weft-" + e.Name + "-pod-cnitool"
	if err := testenv.CreateNetNS(ns); err != nil {
		t.Fatal(err)
	}
	defer testenv.DeleteNetNS(ns)
	nodeTarget, err := e.Target("node/" + node.Name)
	if err != nil {
		t.Fatal(err)
	}
	cnitool := func(command string) []byte {
		t.Helper()
		cmd := exec.CommandContext(ctx, filepath.Join(filepath.Dir(e.Bin.CNI), "cnitool"), command, "weft", testenv.NetNSPath(ns))
		cmd.Env = append(os.Environ(), "NETCONFPATH="+confDir, "CNI_PATH="+filepath.Dir(e.Bin.CNI),
			// libcni (cnitool) refuses CNI_ARGS values holding '=', so the
			// labels travel as runtimeConfig.labels (capability "labels").
			"CNI_ARGS=K8S_POD_NAMESPACE=e2e;K8S_POD_NAME=cnitool",
			`CAP_ARGS={"labels":{"app":"cnitool","tier":"test"}}`)
		var out, errOut strings.Builder
		cmd.Stdout, cmd.Stderr = &out, &errOut
		if err := nodeTarget.Run(cmd); err != nil {
			t.Fatalf("cnitool %s: %v\nstdout: %s\nstderr: %s", command, err, out.String(), errOut.String())
		}
		return []byte(out.String())
	}

	var res struct {
		IPs []struct {
			Address string `json:"address"`
		} `json:"ips"`
	}
	if err := json.Unmarshal(cnitool("add"), &res); err != nil || len(res.IPs) == 0 {
		t.Fatalf("cnitool add: no address in the result (%v)", err)
	}
	pfx, err := netip.ParsePrefix(res.IPs[0].Address)
	if err != nil {
		t.Fatal(err)
	}
	ip := pfx.Addr()

	a, closeFn, err := e.Agent(ctx, node.Name)
	if err != nil {
		t.Fatal(err)
	}
	defer closeFn()
	ep, err := a.GetEndpoint(ctx, &agentapi.GetEndpointRequest{Ip: ip.String()})
	if err != nil {
		t.Fatalf("the agent does not know the endpoint cnitool created at %s: %v", ip, err)
	}
	if !strings.Contains(strings.Join(ep.Labels, ","), "k8s:app=cnitool") || ep.Namespace != "e2e" {
		t.Errorf("endpoint %s: labels %v, namespace %q; expected k8s:app=cnitool and namespace e2e", ip, ep.Labels, ep.Namespace)
	}

	// A pod on the other node reaches it.
	other, err := e.AddPod(ctx, testenv.PodSpec{Name: "other", Node: "c1-n2"})
	if err != nil {
		t.Fatal(err)
	}
	var ln net.Listener
	if err := testenv.InNetNS(ns, func() (err error) { ln, err = net.Listen("tcp4", ip.String()+":7200"); return err }); err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	ot, _ := e.Target("pod/" + other.Name)
	eventually(t, time.Minute, "pod other reaches the cnitool namespace", func() error {
		return ot.Do(func() error {
			c, err := net.DialTimeout("tcp4", ip.String()+":7200", time.Second)
			if err == nil {
				c.Close()
			}
			return err
		})
	})

	cnitool("check")
	cnitool("del")
	if _, err := a.GetEndpoint(ctx, &agentapi.GetEndpointRequest{Ip: ip.String()}); err == nil {
		t.Errorf("endpoint %s still exists after cnitool del", ip)
	}
	if out, err := nodeTarget.Output(ctx, "ip", "-o", "link", "show", ep.HostIfname); err == nil {
		t.Errorf("host veth %s still exists after cnitool del: %s", ep.HostIfname, out)
	}
	cnitool("del") // idempotent
}

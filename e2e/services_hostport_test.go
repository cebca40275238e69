package e2e

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/weftnet/weft/testenv"
)

const hostPort = 18080

// hostPort wires a namespace with cnitool and the portMappings capability
// (hostPort 18080 → 8080) on the first node, reaches it from the second
// node at the first node's address, and checks DEL removes the frontend.
func (sx *serviceFixture) hostPort(t *testing.T) {
	e := sx.e
	node := e.Nodes[0]
	confDir := t.TempDir()
	if err := os.WriteFile(filepath.Join(confDir, "10-weft.conf"), node.CNIConfig(), 0o644); err != nil {
		t.Fatal(err)
	}
	ns := "weft-" + e.Name + "-pod-hostport"
	if err := testenv.CreateNetNS(ns); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { testenv.DeleteNetNS(ns) })
	nodeTarget, err := e.Target("node/" + node.Name)
	if err != nil {
		t.Fatal(err)
	}
	cnitool := func(command string) error {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, filepath.Join(filepath.Dir(e.Bin.CNI), "cnitool"), command, "weft", testenv.NetNSPath(ns))
		cmd.Env = append(os.Environ(), "NETCONFPATH="+confDir, "CNI_PATH="+filepath.Dir(e.Bin.CNI),
			"CNI_ARGS=K8S_POD_NAMESPACE="+svcNamespace+";K8S_POD_NAME=hostport",
			fmt.Sprintf(`CAP_ARGS={"portMappings":[{"hostPort":%d,"containerPort":8080,"protocol":"tcp"}]}`, hostPort))
		var out strings.Builder
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := nodeTarget.Run(cmd); err != nil {
			return fmt.Errorf("cnitool %s: %w: %s", command, err, out.String())
		}
		return nil
	}
	if err := cnitool("add"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := cnitool("del"); err != nil {
			t.Error(err)
		}
	})
	var ln net.Listener
	if err := testenv.InNetNS(ns, func() (err error) { ln, err = net.Listen("tcp4", ":8080"); return err }); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			fmt.Fprintln(c, "hostport")
			c.Close()
		}
	}()
	addr := netip.AddrPortFrom(node.Addr(), hostPort).String()
	other, err := e.Target("node/" + e.Nodes[1].Name)
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, "host port "+addr+" from node "+other.Name, func() error {
		var line string
		err := other.Do(func() error {
			c, err := net.DialTimeout("tcp4", addr, 2*time.Second)
			if err != nil {
				return err
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(2 * time.Second))
			b := make([]byte, 16)
			n, err := c.Read(b)
			line = string(b[:n])
			return err
		})
		if err != nil {
			return err
		}
		if strings.TrimSpace(line) != "hostport" {
			return fmt.Errorf("answered %q", line)
		}
		return nil
	})
	out, err := sx.weft(node.Name, "service", "list")
	if err != nil || !strings.Contains(out, addr+"/TCP") || !strings.Contains(out, "HostPort       hostport") {
		t.Fatalf("weft service list does not show HostPort %s: %v\n%s", addr, err, out)
	}
	if err := cnitool("del"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, "HostPort frontend removed after DEL", func() error {
		out, err := sx.weft(node.Name, "service", "list")
		if err != nil {
			return err
		}
		if strings.Contains(out, addr) {
			return fmt.Errorf("still listed:\n%s", out)
		}
		return nil
	})
}

package connectivity

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/netip"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/weftnet/weft/internal/echo"
	"github.com/weftnet/weft/testenv"
)

// testenvDriver runs in a testenv environment: pods through testenv (or
// its kubelet in Kubernetes mode), servers and probes in process inside
// the namespaces.
type testenvDriver struct {
	fx *fixture // for the Kubernetes-mode pods (fx.env, fx.kube)
}

func (d testenvDriver) env() *testenv.Env { return d.fx.env }

func (d testenvDriver) nodes() []nodeInfo {
	var out []nodeInfo
	for _, c := range d.env().Clusters {
		for _, n := range d.env().Nodes {
			if n.Cluster == c.Name {
				out = append(out, nodeInfo{name: n.Name, cluster: n.Cluster, ip: n.Addr(), socket: n.Socket, log: n.Log})
			}
		}
	}
	return out
}

func (d testenvDriver) ensurePod(ctx context.Context, name, node string, labels map[string]string) (endpoint, int, error) {
	fx := d.fx
	p, err := fx.env.Pod(name)
	if fx.env.Kubernetes {
		// The agents take a pod's labels from Kubernetes: the test pods
		// are Pods, run by testenv's kubelet.
		if p, err = fx.ensureKubePod(ctx, name, node, labels); err != nil {
			return endpoint{}, 0, err
		}
	} else if err != nil || p.IP == "" {
		if err == nil { // half-created by an interrupted run
			_ = fx.env.DelPod(ctx, name)
		}
		fmt.Fprintf(fx.opts.Progress, "• creating test pod %s on %s\n", name, node)
		if p, err = fx.env.AddPod(ctx, testenv.PodSpec{Name: name, Node: node, Labels: labels}); err != nil {
			return endpoint{}, 0, fmt.Errorf("prepare connectivity test: %w", err)
		}
	}
	t, err := fx.env.Target("pod/" + p.Name)
	if err != nil {
		return endpoint{}, 0, err
	}
	ep := endpoint{kind: "pod", name: name, node: p.Node, ip: p.Addr(), target: t}
	var mtu int
	err = t.Do(func() error {
		ifc, err := net.InterfaceByName("eth0")
		if err == nil {
			mtu = ifc.MTU
		}
		return err
	})
	if err != nil {
		return endpoint{}, 0, fmt.Errorf("read MTU of pod %s: %w", name, err)
	}
	return ep, mtu, nil
}

func (d testenvDriver) deletePod(ctx context.Context, p endpoint) error {
	if d.env().Kubernetes {
		return d.fx.deleteKubePod(ctx, p)
	}
	return d.env().DelPod(ctx, p.name)
}

// serve starts the servers in process inside ep's namespace
// (testenv.ServeEcho), and in a pod the HTTP echo server.
func (d testenvDriver) serve(_ context.Context, ep endpoint, name string) (func(), error) {
	tcp, err := testenv.ServeEcho(ep.target.NetNS, netip.AddrPortFrom(ep.ip, tcpPort), false, name)
	if err != nil {
		return nil, fmt.Errorf("start echo servers in %s: %w", ep, err)
	}
	udp, err := testenv.ServeEcho(ep.target.NetNS, netip.AddrPortFrom(ep.ip, udpPort), true, name)
	if err != nil {
		tcp.Close()
		return nil, fmt.Errorf("start echo servers in %s: %w", ep, err)
	}
	if ep.kind != "pod" {
		return func() { tcp.Close(); udp.Close() }, nil
	}
	var ln net.Listener
	err = ep.target.Do(func() (err error) {
		ln, err = net.Listen("tcp4", netip.AddrPortFrom(ep.ip, httpPort).String())
		return err
	})
	if err != nil {
		tcp.Close()
		udp.Close()
		return nil, fmt.Errorf("start the HTTP echo server in %s: %w", ep, err)
	}
	web := echo.ServeHTTP(ln, name)
	return func() { tcp.Close(); udp.Close(); web.Close() }, nil
}

// dial opens the socket in process, inside from's namespace.
func (d testenvDriver) dial(ctx context.Context, from endpoint, network string, addr netip.AddrPort) (c net.Conn, err error) {
	err = from.target.Do(func() (err error) {
		var d net.Dialer
		c, err = d.DialContext(ctx, network, addr.String())
		return err
	})
	return c, err
}

// firstLine runs bash in from (namespace and the node's cgroup): the
// socket load balancer applies to sockets of processes in the node's
// cgroup, which a socket of this process is not.
func (d testenvDriver) firstLine(ctx context.Context, from endpoint, addr netip.AddrPort) (string, error) {
	script := fmt.Sprintf("exec 3<>/dev/tcp/%s/%d && head -n1 <&3", addr.Addr(), addr.Port())
	out, err := from.target.Output(ctx, "bash", "-c", script)
	return strings.TrimSpace(string(out)), err
}

// ping runs iputils ping in from.
func (d testenvDriver) ping(ctx context.Context, from endpoint, dst netip.Addr, size int, timeout time.Duration) error {
	wait := strconv.Itoa(max(1, int(timeout/time.Second)))
	args := []string{"-n", "-c", "1", "-W", wait}
	if size > 0 {
		args = append(args, "-M", "do", "-s", strconv.Itoa(size))
	}
	cmd := exec.CommandContext(ctx, "ping", append(args, dst.String())...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := from.target.Run(cmd); err != nil {
		return fmt.Errorf("%w: %s", err, lastLine(out.String()))
	}
	return nil
}

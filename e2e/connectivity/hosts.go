package connectivity

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"slices"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/weftnet/weft/api/agentapi"
)

// Agent is one node of standalone hosts: its name and the unix socket of
// its agent (the agent's own, or one forwarded with ssh -L).
type Agent struct {
	Node   string
	Socket string
}

// Hosts is a run against standalone hosts (no testenv, no Kubernetes):
// every test pod is created by the node's agent through the node's CNI
// configuration (the Connectivity API), and every probe that starts in a
// pod or a node is made by that node's agent.
type Hosts struct {
	Agents []Agent
	// CNIBinDir and CNIConflist are where each node's agent finds weft-cni
	// and the CNI configuration list; empty: the installed /opt/cni/bin and
	// /etc/cni/net.d/10-weft.conflist. "{node}" in them becomes the node's
	// name.
	CNIBinDir, CNIConflist string
}

// hostsDriver runs against standalone hosts through their agents.
type hostsDriver struct {
	hosts    Hosts
	progress io.Writer
	nodeList []nodeInfo
	conns    map[string]*grpc.ClientConn // by node
}

// connectHosts checks every agent answers under the node name it was
// given and learns the layout (clusters, addresses) from them.
func connectHosts(ctx context.Context, h Hosts) (*hostsDriver, error) {
	if len(h.Agents) == 0 {
		return nil, errors.New("run connectivity test on hosts: no agent given")
	}
	d := &hostsDriver{hosts: h, conns: map[string]*grpc.ClientConn{}}
	var clusters []string
	byCluster := map[string][]nodeInfo{}
	for _, a := range h.Agents {
		if _, ok := d.conns[a.Node]; ok {
			d.close()
			return nil, fmt.Errorf("run connectivity test on hosts: node %s is given twice", a.Node)
		}
		conn, err := dialSocket(a.Node, a.Socket)
		if err != nil {
			d.close()
			return nil, err
		}
		d.conns[a.Node] = conn
		rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		st, err := agentapi.NewAgentClient(conn).Status(rctx, &agentapi.StatusRequest{})
		cancel()
		if err != nil {
			d.close()
			return nil, fmt.Errorf("reach the agent of %s at %s: %v (is weft-agent running there, and the socket forwarded?)", a.Node, a.Socket, status.Convert(err).Message())
		}
		if st.Node != a.Node {
			d.close()
			return nil, fmt.Errorf("the agent at %s is node %s's, not %s's: give --agent %s=%s", a.Socket, st.Node, a.Node, st.Node, a.Socket)
		}
		ip, err := netip.ParseAddr(st.NodeIpv4)
		if err != nil {
			d.close()
			return nil, fmt.Errorf("the agent of %s reports no node address (%q)", a.Node, st.NodeIpv4)
		}
		if !slices.Contains(clusters, st.Cluster) {
			clusters = append(clusters, st.Cluster)
		}
		byCluster[st.Cluster] = append(byCluster[st.Cluster], nodeInfo{name: a.Node, cluster: st.Cluster, ip: ip, socket: a.Socket})
	}
	for _, c := range clusters {
		d.nodeList = append(d.nodeList, byCluster[c]...)
	}
	return d, nil
}

// untested names the nodes the agents list in their clusters that no
// --agent reaches (they are not tested).
func (d *hostsDriver) untested(ctx context.Context) []string {
	var out []string
	seen := map[string]bool{}
	for _, n := range d.nodeList {
		seen[n.name] = true
	}
	for _, n := range d.nodeList {
		rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		resp, err := agentapi.NewAgentClient(d.conns[n.name]).ListNodes(rctx, &agentapi.ListNodesRequest{})
		cancel()
		if err != nil {
			continue
		}
		for _, o := range resp.Nodes {
			if o.GetCluster() == n.cluster && !seen[o.GetName()] {
				seen[o.GetName()] = true
				out = append(out, o.GetCluster()+"/"+o.GetName())
			}
		}
	}
	return out
}

func (d *hostsDriver) close() {
	for _, c := range d.conns {
		c.Close()
	}
}

func (d *hostsDriver) nodes() []nodeInfo { return d.nodeList }

func (d *hostsDriver) client(node string) agentapi.ConnectivityClient {
	return agentapi.NewConnectivityClient(d.conns[node])
}

func (d *hostsDriver) ensurePod(ctx context.Context, name, node string, labels map[string]string) (endpoint, int, error) {
	rctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	p, err := d.client(node).CreateTestPod(rctx, &agentapi.CreateTestPodRequest{
		Name: name, Labels: labels,
		CniBinDir:   strings.ReplaceAll(d.hosts.CNIBinDir, "{node}", node),
		CniConflist: strings.ReplaceAll(d.hosts.CNIConflist, "{node}", node),
	})
	if err != nil {
		return endpoint{}, 0, fmt.Errorf("create test pod %s on node %s: %s", name, node, unimplemented(err))
	}
	ip, err := netip.ParseAddr(p.Ip)
	if err != nil {
		return endpoint{}, 0, fmt.Errorf("create test pod %s on node %s: address %q: %w", name, node, p.Ip, err)
	}
	if p.Created {
		fmt.Fprintf(d.progress, "• created test pod %s on %s through its agent (%s)\n", name, node, p.Ip)
	}
	return endpoint{kind: "pod", name: name, node: node, ip: ip}, int(p.Mtu), nil
}

func unimplemented(err error) string {
	if status.Code(err) == codes.Unimplemented {
		return "the agent does not serve the Connectivity API (upgrade weft-agent)"
	}
	return status.Convert(err).Message()
}

func (d *hostsDriver) deletePod(ctx context.Context, p endpoint) error {
	_, err := d.client(p.node).DeleteTestPod(ctx, &agentapi.DeleteTestPodRequest{Name: p.name})
	if err != nil {
		return fmt.Errorf("delete test pod %s on node %s: %s", p.name, p.node, status.Convert(err).Message())
	}
	return nil
}

// serve: a test pod's servers run from its creation; a node's run as long
// as a ServeEcho call to its agent.
func (d *hostsDriver) serve(ctx context.Context, ep endpoint, name string) (func(), error) {
	if ep.kind == "pod" {
		return func() {}, nil
	}
	sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	stream, err := d.client(ep.node).ServeEcho(sctx, &agentapi.ServeEchoRequest{Name: name, TcpPort: tcpPort, UdpPort: udpPort})
	if err == nil {
		_, err = stream.Recv()
	}
	if err != nil {
		cancel()
		return nil, fmt.Errorf("start echo servers on %s: %s", ep, unimplemented(err))
	}
	return cancel, nil
}

// from is the Connectivity API's name of where a probe starts.
func from(ep endpoint) string {
	if ep.kind == "pod" {
		return ep.name
	}
	return ""
}

func (d *hostsDriver) dial(ctx context.Context, src endpoint, network string, addr netip.AddrPort) (net.Conn, error) {
	timeout := 5 * time.Second
	if dl, ok := ctx.Deadline(); ok {
		timeout = time.Until(dl)
	}
	return dialStream(ctx, d.client(src.node), &agentapi.DialRequest{
		From: from(src), Network: strings.TrimSuffix(network, "4"), Address: addr.String(),
		TimeoutMs: uint32(max(timeout, time.Millisecond) / time.Millisecond),
	})
}

// firstLine: the agent's sockets are its node's (cgroup included), so the
// node's socket load balancer applies.
func (d *hostsDriver) firstLine(ctx context.Context, src endpoint, addr netip.AddrPort) (string, error) {
	c, err := d.dial(ctx, src, "tcp4", addr)
	if err != nil {
		return "", err
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return "", fmt.Errorf("connected, no greeting: %w", err)
	}
	return strings.TrimSpace(line), nil
}

func (d *hostsDriver) ping(ctx context.Context, src endpoint, dst netip.Addr, size int, timeout time.Duration) error {
	_, err := d.client(src.node).Ping(ctx, &agentapi.PingRequest{
		From: from(src), Dst: dst.String(), Size: uint32(size), DontFragment: size > 0,
		TimeoutMs: uint32(timeout / time.Millisecond),
	})
	if err != nil {
		return errors.New(status.Convert(err).Message())
	}
	return nil
}

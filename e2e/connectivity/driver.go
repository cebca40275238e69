package connectivity

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/weftnet/weft/api/agentapi"
)

// driver is where a run happens: a testenv environment (testenvDriver) or
// standalone hosts reached through their agents' Connectivity API
// (hostsDriver). The fixture asks it for the nodes, the test pods, echo
// servers and the probes that must start inside a pod or a node.
type driver interface {
	// nodes are the nodes under test, clusters in order, nodes in order
	// within their cluster.
	nodes() []nodeInfo
	// ensurePod reuses or creates test pod name on node with labels and
	// returns it (echo servers running) with its MTU.
	ensurePod(ctx context.Context, name, node string, labels map[string]string) (endpoint, int, error)
	deletePod(ctx context.Context, p endpoint) error
	// serve starts TCP and UDP echo servers on ep's address that greet as
	// name, until stop.
	serve(ctx context.Context, ep endpoint, name string) (stop func(), err error)
	// dial connects from inside from (a pod or a node) to addr; network is
	// tcp4 or udp4.
	dial(ctx context.Context, from endpoint, network string, addr netip.AddrPort) (net.Conn, error)
	// firstLine connects from inside from over TCP to addr as a process of
	// from's node (so the node's socket load balancer applies) and returns
	// the first line the server sent.
	firstLine(ctx context.Context, from endpoint, addr netip.AddrPort) (string, error)
	// ping sends one ICMP echo request from inside from to dst; size > 0
	// sends that many payload bytes with "don't fragment" set.
	ping(ctx context.Context, from endpoint, dst netip.Addr, size int, timeout time.Duration) error
}

// nodeInfo is a node under test.
type nodeInfo struct {
	name, cluster string
	ip            netip.Addr
	socket        string // the agent's unix socket (maybe forwarded)
	log           string // the agent's log file; empty when not readable here
}

// node returns the node of that name.
func (fx *fixture) node(name string) (nodeInfo, error) {
	for _, n := range fx.drv.nodes() {
		if n.name == name {
			return n, nil
		}
	}
	return nodeInfo{}, fmt.Errorf("no node %s under test", name)
}

// agent connects to node's agent.
func (fx *fixture) agent(ctx context.Context, node string) (agentapi.AgentClient, func() error, error) {
	n, err := fx.node(node)
	if err != nil {
		return nil, nil, err
	}
	return agentapi.Dial(ctx, n.socket)
}

// conn opens a gRPC connection to node's agent.
func (fx *fixture) conn(node string) (*grpc.ClientConn, error) {
	n, err := fx.node(node)
	if err != nil {
		return nil, err
	}
	return dialSocket(node, n.socket)
}

func dialSocket(node, socket string) (*grpc.ClientConn, error) {
	if _, err := os.Stat(socket); err != nil {
		return nil, fmt.Errorf("reach the agent of %s: %w", node, err)
	}
	conn, err := grpc.NewClient("unix://"+socket, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, fmt.Errorf("reach the agent of %s at %s: %w", node, socket, err)
	}
	return conn, nil
}

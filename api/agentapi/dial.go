package agentapi

import (
	"context"
	"fmt"
	"net"
	"os"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// DefaultSocket is where weft-agent listens unless told otherwise.
const DefaultSocket = "/var/run/weft/agent.sock"

// Dial connects to the agent listening on the unix socket path. It fails at
// once, naming the socket, when nothing is there.
func Dial(ctx context.Context, socket string) (AgentClient, func() error, error) {
	if _, err := os.Stat(socket); err != nil {
		return nil, nil, fmt.Errorf("reach weft-agent at %s: %w (is the agent running on this node?)", socket, err)
	}
	conn, err := grpc.NewClient("unix://"+socket,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", socket)
		}),
		grpc.WithConnectParams(grpc.ConnectParams{MinConnectTimeout: 2 * time.Second}),
	)
	if err != nil {
		return nil, nil, fmt.Errorf("reach weft-agent at %s: %w", socket, err)
	}
	return NewAgentClient(conn), conn.Close, nil
}

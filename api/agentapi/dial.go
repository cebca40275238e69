package agentapi

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"os"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
)

// DefaultSocket is where weft-agent listens unless told otherwise.
const DefaultSocket = "/var/run/weft/agent.sock"

// Dial connects to the agent listening on the unix socket path. It fails at
// once, naming the socket, when nothing is there.
func Dial(ctx context.Context, socket string) (AgentClient, func() error, error) {
	conn, err := dialUnix(socket)
	if err != nil {
		return nil, nil, err
	}
	return NewAgentClient(conn), conn.Close, nil
}

// DialObserver connects to the flow observer of the agent listening on
// the unix socket path.
func DialObserver(ctx context.Context, socket string) (ObserverClient, func() error, error) {
	conn, err := dialUnix(socket)
	if err != nil {
		return nil, nil, err
	}
	return NewObserverClient(conn), conn.Close, nil
}

// DialObserverTCP connects to a flow observer served on TCP with mutual
// TLS (an agent's --flows-listen-address, or weft-relay). dial opens the
// TCP connection; nil: a plain dialer.
func DialObserverTCP(addr string, tlsCfg *tls.Config, dial func(ctx context.Context, addr string) (net.Conn, error)) (ObserverClient, func() error, error) {
	opts := []grpc.DialOption{grpc.WithTransportCredentials(credentials.NewTLS(tlsCfg)),
		grpc.WithConnectParams(grpc.ConnectParams{MinConnectTimeout: 2 * time.Second})}
	if dial != nil {
		opts = append(opts, grpc.WithContextDialer(dial))
	}
	conn, err := grpc.NewClient("passthrough:///"+addr, opts...)
	if err != nil {
		return nil, nil, fmt.Errorf("reach flow observer at %s: %w", addr, err)
	}
	return NewObserverClient(conn), conn.Close, nil
}

func dialUnix(socket string) (*grpc.ClientConn, error) {
	if _, err := os.Stat(socket); err != nil {
		return nil, fmt.Errorf("reach weft-agent at %s: %w (is the agent running on this node?)", socket, err)
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
		return nil, fmt.Errorf("reach weft-agent at %s: %w", socket, err)
	}
	return conn, nil
}

// DialConn connects to the agent listening on the unix socket path, for
// any of the services it serves (NewAgentClient, NewPolicyClient, …).
func DialConn(socket string) (*grpc.ClientConn, error) {
	return dialUnix(socket)
}

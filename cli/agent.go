package cli

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/weftnet/weft/api/agentapi"
)

// target says which agent a command talks to and how it was chosen.
type target struct {
	socket string
	env    string // testenv environment; empty when chosen by --socket
	node   string // testenv node; empty when chosen by --socket
	// timeout is the --timeout in force, for error messages.
	timeout string
}

func (t target) String() string {
	if t.env == "" {
		return t.socket
	}
	return fmt.Sprintf("%s (node %s of testenv environment %s)", t.socket, t.node, t.env)
}

// where names the agent for messages about its answers.
func (t target) where() string {
	if t.env == "" {
		return "the agent at " + t.socket
	}
	return fmt.Sprintf("node %s of testenv environment %s", t.node, t.env)
}

// target resolves --socket, --name and --node to one agent socket. Flags
// given on the command line win over WEFT_* variables; --socket and
// --name/--node given together are refused.
func (o *options) target() (target, error) {
	t := target{socket: o.socket, timeout: o.timeout.String()}
	if o.socketFlag && (o.nameFlag || o.nodeFlag) {
		return t, fmt.Errorf("choose the agent by --socket (one agent) or by --name/--node (a testenv node), not both")
	}
	if o.socketFlag || (o.name == "" && o.node == "") {
		return t, nil
	}
	name := o.name
	if name == "" {
		name = defaultEnvironment
	}
	socket, node, err := testenvSocket(o.testenvRoot, name, o.node)
	if err != nil {
		return t, err
	}
	t.socket, t.env, t.node = socket, name, node
	return t, nil
}

// withAgent connects to the chosen agent and calls fn with a context bounded
// by --timeout. Errors of fn are returned as they are.
func (o *options) withAgent(ctx context.Context, fn func(ctx context.Context, t target, a agentapi.AgentClient) error) error {
	t, err := o.target()
	if err != nil {
		return err
	}
	if _, err := os.Stat(t.socket); err != nil {
		return fmt.Errorf("reach weft-agent at %s: is the agent running? (%w)", t, err)
	}
	client, closeConn, err := agentapi.Dial(ctx, t.socket)
	if err != nil {
		return fmt.Errorf("reach weft-agent at %s: is the agent running? (%w)", t, err)
	}
	defer closeConn()
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	return fn(ctx, t, client)
}

// withClient is withAgent for any service of the agent's socket: newClient
// makes its client (agentapi.NewXClient).
func withClient[C any](ctx context.Context, o *options, newClient func(grpc.ClientConnInterface) C, fn func(ctx context.Context, t target, c C) error) error {
	t, err := o.target()
	if err != nil {
		return err
	}
	if _, err := os.Stat(t.socket); err != nil {
		return fmt.Errorf("reach weft-agent at %s: is the agent running? (%w)", t, err)
	}
	conn, err := grpc.NewClient("unix://"+t.socket,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", t.socket)
		}),
		grpc.WithConnectParams(grpc.ConnectParams{MinConnectTimeout: 2 * time.Second}),
	)
	if err != nil {
		return fmt.Errorf("reach weft-agent at %s: is the agent running? (%w)", t, err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	return fn(ctx, t, newClient(conn))
}

// rpcError turns a failed call (what: "list nodes") into a message that says
// what to check.
func (t target) rpcError(what string, err error) error {
	s, ok := status.FromError(err)
	if !ok {
		return fmt.Errorf("%s: %w", what, err)
	}
	switch s.Code() {
	case codes.Unavailable:
		if transportFailure(s.Message()) {
			return fmt.Errorf("reach weft-agent at %s: is the agent running? (%s)", t, s.Message())
		}
		// The agent answered: something it depends on is down.
		return fmt.Errorf("%s: weft-agent at %s cannot answer now: %s (check its store with weft status)", what, t, s.Message())
	case codes.DeadlineExceeded:
		return fmt.Errorf("%s: weft-agent at %s gave no answer within %s (--timeout): is it running and not stuck?", what, t, t.timeout)
	case codes.Canceled:
		return fmt.Errorf("%s: interrupted", what)
	case codes.Unimplemented:
		return fmt.Errorf("%s: weft-agent at %s does not serve it (%s): is the agent older than this CLI?", what, t, s.Message())
	case codes.PermissionDenied:
		return fmt.Errorf("%s: weft-agent at %s refused: %s (the socket is root-only: run as root)", what, t, s.Message())
	}
	return fmt.Errorf("%s: %s", what, s.Message())
}

// transportFailure tells the client's own "could not talk to the server"
// errors from an Unavailable status the agent sent.
func transportFailure(msg string) bool {
	for _, m := range []string{"connection error", "transport", "error reading from server", "connection closed"} {
		if strings.Contains(msg, m) {
			return true
		}
	}
	return false
}

// notFound reports whether err is the agent's "no such object" answer.
func notFound(err error) bool {
	var se interface{ GRPCStatus() *status.Status }
	return errors.As(err, &se) && se.GRPCStatus().Code() == codes.NotFound
}

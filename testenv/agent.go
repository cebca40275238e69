package testenv

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/weftnet/weft/api/agentapi"
	"github.com/weftnet/weft/clustermesh"
)

// agentArgs is the node's weft-agent command line (flags per docs/agent.md).
func (e *Env) agentArgs(n Node) ([]string, error) {
	c, err := e.Cluster(n.Cluster)
	if err != nil {
		return nil, err
	}
	args := []string{e.Bin.Agent,
		"--node-name", n.Name,
		"--cluster-name", c.Name,
		"--cluster-id", strconv.Itoa(c.ID),
		"--routing-mode", e.Routing,
		"--node-ip", n.IP,
		"--underlay-device", underlayDev,
		"--pod-cidr-pool", c.PodCIDRPool,
		"--state-dir", n.Dir,
		"--socket", n.Socket,
		"--bpffs", e.BPFFS,
		"--cgroup-path", n.Cgroup,
		"--kvstore", e.KVStore,
		"--kvstore-endpoints", strings.Join(c.StoreEndpoints, ","),
	}
	if e.LeaseTTL != "" {
		args = append(args, "--kvstore-lease-ttl", e.LeaseTTL)
	}
	// With clustermesh, the agent serves its flows to the cluster's relay
	// (weft-apiserver --relay-listen) with the clustermesh directory's
	// certificates.
	d := clustermesh.Dir(filepath.Join(e.MeshRoot(), c.Name))
	if _, err := os.Stat(d.Cert(clustermesh.FlowsAgent)); err == nil {
		args = append(args, "--flows-listen-address", ":"+strconv.Itoa(clustermesh.RelayAgentPort),
			"--flows-tls-cert", d.Cert(clustermesh.FlowsAgent), "--flows-tls-key", d.Key(clustermesh.FlowsAgent),
			"--flows-tls-client-ca", d.Path(clustermesh.CAFile))
	}
	return append(args, e.AgentArgs...), nil
}

// StartAgent starts the node's weft-agent inside the node's namespace,
// detached, logging to the node's agent.log. It does not wait for it.
func (e *Env) StartAgent(ctx context.Context, node string) error {
	n, err := e.Node(node)
	if err != nil {
		return err
	}
	if pid := readPID(n.PIDFile); alive(pid) {
		return fmt.Errorf("start agent of %s: already running as pid %d", n.Name, pid)
	}
	args, err := e.agentArgs(n)
	if err != nil {
		return err
	}
	pid, err := e.startDetached(process{args: args, netns: n.NetNS, log: n.Log, pidFile: n.PIDFile})
	if err != nil {
		return fmt.Errorf("start agent of %s: %w", n.Name, err)
	}
	e.step("agent %s: started (pid %d, log %s)", n.Name, pid, n.Log)
	return nil
}

// AgentPID is the pid of the node's agent, 0 when it does not run.
func (e *Env) AgentPID(node string) int {
	n, err := e.Node(node)
	if err != nil {
		return 0
	}
	if pid := readPID(n.PIDFile); alive(pid) {
		return pid
	}
	return 0
}

// StopAgent sends sig to the node's agent and waits until it has exited.
// SIGKILL simulates a crash; SIGTERM is a graceful stop.
func (e *Env) StopAgent(ctx context.Context, node string, sig syscall.Signal) error {
	pid := e.AgentPID(node)
	if pid == 0 {
		return nil
	}
	if err := syscall.Kill(pid, sig); err != nil {
		return fmt.Errorf("signal agent of %s (pid %d): %w", node, pid, err)
	}
	if !waitGone([]int{pid}, 30*time.Second) {
		return fmt.Errorf("stop agent of %s: pid %d still runs 30s after %v", node, pid, sig)
	}
	e.step("agent %s: stopped (%v)", node, sig)
	return nil
}

// WaitAgent waits until the node's agent answers Status on its socket.
func (e *Env) WaitAgent(ctx context.Context, node string, timeout time.Duration) error {
	n, err := e.Node(node)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	start := time.Now()
	var last error
	for {
		st, err := e.agentStatus(ctx, n)
		if err == nil {
			e.step("agent %s: ready in %v (pod CIDR %s)", n.Name, time.Since(start).Round(10*time.Millisecond), strings.Join(st.PodCidrs, ","))
			return nil
		}
		last = err
		if !alive(readPID(n.PIDFile)) {
			return fmt.Errorf("agent of %s exited before it was ready; last log lines of %s:\n%s", n.Name, n.Log, tail(n.Log, 15))
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for agent of %s: not ready after %v (last: %v); last log lines of %s:\n%s", n.Name, timeout, last, n.Log, tail(n.Log, 15))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (e *Env) agentStatus(ctx context.Context, n Node) (*agentapi.StatusResponse, error) {
	c, closeFn, err := agentapi.Dial(ctx, n.Socket)
	if err != nil {
		return nil, err
	}
	defer closeFn()
	rctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	return c.Status(rctx, &agentapi.StatusRequest{})
}

// Agent connects to the node's agent API; close the connection when done.
func (e *Env) Agent(ctx context.Context, node string) (agentapi.AgentClient, func() error, error) {
	n, err := e.Node(node)
	if err != nil {
		return nil, nil, err
	}
	return agentapi.Dial(ctx, n.Socket)
}

// Conn opens a gRPC connection to the node's agent socket, for any of the
// services it serves (agentapi.NewAgentClient, agentapi.NewPolicyClient).
func (e *Env) Conn(node string) (*grpc.ClientConn, error) {
	n, err := e.Node(node)
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(n.Socket); err != nil {
		return nil, fmt.Errorf("reach the agent of %s: %w", node, err)
	}
	conn, err := grpc.NewClient("unix://"+n.Socket, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, fmt.Errorf("reach the agent of %s at %s: %w", node, n.Socket, err)
	}
	return conn, nil
}

// tail returns the last n lines of a file, for error messages.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "  (" + err.Error() + ")"
	}
	lines := bytes.Split(bytes.TrimRight(b, "\n"), []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return "  " + string(bytes.Join(lines, []byte("\n  ")))
}

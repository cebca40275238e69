package testenv

import (
	"context"
	"fmt"
	"syscall"
	"time"
)

// RestartAgent stops the node's agent with sig (SIGKILL: a crash, the
// default when sig is 0; SIGTERM: a graceful stop), starts it again and
// waits up to timeout until it answers on its socket. It returns how long
// the node was without a ready agent, from the signal until the answer.
// Pods keep their addresses and established flows: the endpoints and
// pinned BPF maps outlive the agent.
func (e *Env) RestartAgent(ctx context.Context, node string, sig syscall.Signal, timeout time.Duration) (time.Duration, error) {
	if sig == 0 {
		sig = syscall.SIGKILL
	}
	if _, err := e.Node(node); err != nil {
		return 0, err
	}
	if e.AgentPID(node) == 0 {
		return 0, fmt.Errorf("restart agent of %s: it does not run; start it with `weft testenv up` or StartAgent", node)
	}
	start := time.Now()
	if err := e.StopAgent(ctx, node, sig); err != nil {
		return 0, err
	}
	if err := e.StartAgent(ctx, node); err != nil {
		return 0, err
	}
	if err := e.WaitAgent(ctx, node, timeout); err != nil {
		return 0, err
	}
	took := time.Since(start)
	e.step("agent %s: restarted after %v, ready %v after the signal", node, sig, took.Round(10*time.Millisecond))
	return took, nil
}

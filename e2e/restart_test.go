package e2e

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"syscall"
	"testing"
	"time"

	"github.com/weftnet/weft/api/agentapi"
	"github.com/weftnet/weft/testenv"
)

// TestAgentRestart: a TCP stream between pods on two nodes survives kill -9
// of both agents and their restart, and a pod created afterwards works.
func TestAgentRestart(t *testing.T) {
	for _, routing := range []string{testenv.RoutingTunnel, testenv.RoutingNative} {
		t.Run(routing, func(t *testing.T) {
			spec := testenv.DefaultSpec()
			spec.Routing = routing
			agentRestart(t, up(t, "restart-"+routing[:3], spec))
		})
	}
}

func agentRestart(t *testing.T, e *testenv.Env) {
	ctx := context.Background()
	a, err := e.AddPod(ctx, testenv.PodSpec{Name: "client", Node: "c1-n1", Labels: map[string]string{"app": "client"}})
	if err != nil {
		t.Fatal(err)
	}
	b, err := e.AddPod(ctx, testenv.PodSpec{Name: "server", Node: "c1-n2", Labels: map[string]string{"app": "server"}})
	if err != nil {
		t.Fatal(err)
	}
	waitReachable(t, e, a, b)
	s := startFlow(t, e, a, b, 7100, 30*time.Second)
	s.advance(t, 10, time.Minute, "stream before the crash")

	for _, n := range []string{"c1-n1", "c1-n2"} {
		if err := e.StopAgent(ctx, n, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
	}
	s.advance(t, 10, time.Minute, "stream while both agents are dead")
	for _, n := range []string{"c1-n1", "c1-n2"} {
		if err := e.StartAgent(ctx, n); err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range []string{"c1-n1", "c1-n2"} {
		if err := e.WaitAgent(ctx, n, 2*time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	s.advance(t, 25, time.Minute, "stream after both agents restarted")

	// The endpoints were restored, not recreated.
	for _, p := range []testenv.Pod{a, b} {
		ag, closeFn, err := e.Agent(ctx, p.Node)
		if err != nil {
			t.Fatal(err)
		}
		ep, err := ag.GetEndpoint(ctx, &agentapi.GetEndpointRequest{Ip: p.IP})
		closeFn()
		if err != nil {
			t.Fatalf("pod %s (%s) after the restart: %v", p.Name, p.IP, err)
		}
		if ep.Ipv4 != p.IP+"/32" && ep.Ipv4 != p.IP {
			t.Errorf("pod %s: the agent restored it with address %s, expected %s", p.Name, ep.Ipv4, p.IP)
		}
	}

	late, err := e.AddPod(ctx, testenv.PodSpec{Name: "late", Node: "c1-n2"})
	if err != nil {
		t.Fatalf("create a pod after the restart: %v", err)
	}
	waitReachable(t, e, a, late)
	s.advance(t, 5, time.Minute, "stream at the end")
}

// waitReachable waits until src gets a TCP connection refused or accepted
// from dst (either proves packets flow both ways; nothing listens there).
func waitReachable(t *testing.T, e *testenv.Env, src, dst testenv.Pod) {
	t.Helper()
	tg, err := e.Target("pod/" + src.Name)
	if err != nil {
		t.Fatal(err)
	}
	addr := netip.AddrPortFrom(dst.Addr(), 7199).String()
	eventually(t, time.Minute, fmt.Sprintf("pod %s reaches pod %s", src.Name, dst.Name), func() error {
		return tg.Do(func() error {
			c, err := net.DialTimeout("tcp4", addr, time.Second)
			if err == nil {
				c.Close()
				return nil
			}
			if errors.Is(err, syscall.ECONNREFUSED) {
				return nil
			}
			return err
		})
	})
}

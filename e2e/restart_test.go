package e2e

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/weftnet/weft/api/agentapi"
	"github.com/weftnet/weft/testenv"
)

// stream is a long-lived TCP connection between two pods: the client sends
// a sequence number every 20ms and reads it back from an echo server.
type stream struct {
	mu     sync.Mutex
	echoed uint64
	err    error
	stop   chan struct{}
	done   chan struct{}
}

func (s *stream) state() (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.echoed, s.err
}

// startStream listens in dst and connects from src.
func startStream(t *testing.T, e *testenv.Env, src, dst testenv.Pod) *stream {
	t.Helper()
	st, err := e.Target("pod/" + dst.Name)
	if err != nil {
		t.Fatal(err)
	}
	var ln net.Listener
	if err := st.Do(func() (err error) { ln, err = net.Listen("tcp4", dst.IP+":7100"); return err }); err != nil {
		t.Fatalf("listen in %s: %v", dst.Name, err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); io.Copy(c, c) }()
		}
	}()
	ct, err := e.Target("pod/" + src.Name)
	if err != nil {
		t.Fatal(err)
	}
	var c net.Conn
	if err := ct.Do(func() (err error) { c, err = net.DialTimeout("tcp4", dst.IP+":7100", 5*time.Second); return err }); err != nil {
		t.Fatalf("connect %s -> %s: %v", src.Name, dst.Name, err)
	}
	s := &stream{stop: make(chan struct{}), done: make(chan struct{})}
	go s.run(c)
	t.Cleanup(func() { close(s.stop); <-s.done })
	return s
}

func (s *stream) run(c net.Conn) {
	defer close(s.done)
	defer c.Close()
	var out, in [8]byte
	for seq := uint64(1); ; seq++ {
		select {
		case <-s.stop:
			return
		case <-time.After(20 * time.Millisecond):
		}
		binary.BigEndian.PutUint64(out[:], seq)
		// A pause of the datapath shows as retransmissions, not errors:
		// allow a generous deadline per echo.
		c.SetDeadline(time.Now().Add(30 * time.Second))
		_, err := c.Write(out[:])
		if err == nil {
			_, err = io.ReadFull(c, in[:])
		}
		if err == nil && binary.BigEndian.Uint64(in[:]) != seq {
			err = fmt.Errorf("echo %d came back as %d", seq, binary.BigEndian.Uint64(in[:]))
		}
		s.mu.Lock()
		if err != nil {
			s.err = err
		} else {
			s.echoed = seq
		}
		s.mu.Unlock()
		if err != nil {
			return
		}
	}
}

// advance waits until the stream echoed n more messages.
func (s *stream) advance(t *testing.T, n uint64, what string) {
	t.Helper()
	from, _ := s.state()
	eventually(t, time.Minute, what, func() error {
		got, err := s.state()
		if err != nil {
			t.Fatalf("%s: the TCP stream broke after %d echoes: %v", what, got, err)
		}
		if got < from+n {
			return fmt.Errorf("%d of %d further echoes", got-from, n)
		}
		return nil
	})
}

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
	s := startStream(t, e, a, b)
	s.advance(t, 10, "stream before the crash")

	for _, n := range []string{"c1-n1", "c1-n2"} {
		if err := e.StopAgent(ctx, n, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
	}
	s.advance(t, 10, "stream while both agents are dead")
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
	s.advance(t, 25, "stream after both agents restarted")

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
	s.advance(t, 5, "stream at the end")
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

package e2e

import (
	"context"
	"fmt"
	"net/netip"
	"sync"
	"testing"

	"github.com/weftnet/weft/api/agentapi"
	"github.com/weftnet/weft/datapath"
	"github.com/weftnet/weft/testenv"
)

// flowLog collects one node's drop events from the agent's Flows stream.
type flowLog struct {
	mu     sync.Mutex
	drops  []*agentapi.FlowEvent
	err    error
	closed bool
}

func startFlows(t *testing.T, e *testenv.Env, node string) *flowLog {
	conn, err := e.Conn(node)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	stream, err := agentapi.NewPolicyClient(conn).Flows(ctx, &agentapi.FlowsRequest{DroppedOnly: true})
	if err != nil {
		cancel()
		conn.Close()
		t.Fatalf("read flows of %s: %v", node, err)
	}
	l := &flowLog{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			ev, err := stream.Recv()
			l.mu.Lock()
			if err != nil {
				l.err, l.closed = err, true
				l.mu.Unlock()
				return
			}
			l.drops = append(l.drops, ev)
			l.mu.Unlock()
		}
	}()
	t.Cleanup(func() { cancel(); <-done; conn.Close() })
	return l
}

// find looks for a policy-denied drop of src to dst.
func (l *flowLog) find(src netip.Addr, dst netip.AddrPort) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, ev := range l.drops {
		s, err1 := netip.ParseAddrPort(ev.GetSource())
		d, err2 := netip.ParseAddrPort(ev.GetDestination())
		if err1 == nil && err2 == nil && s.Addr() == src && d == dst && ev.GetReasonCode() == uint32(datapath.ReasonPolicyDenied) {
			return nil
		}
	}
	if l.closed {
		return fmt.Errorf("flow stream ended: %v", l.err)
	}
	return fmt.Errorf("none among %d drops", len(l.drops))
}

package relay

import (
	"context"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/weftnet/weft/api/agentapi"
	"github.com/weftnet/weft/flow"
)

// benchSetup starts n agents and a relay over them, served like
// weft-relay (mutual TLS), and returns clients of the relay and of the
// first agent directly (the baseline).
func benchSetup(b *testing.B, n int) (agents []*agent, viaRelay, direct agentapi.ObserverClient) {
	p := newPKI(b)
	for i := range n {
		agents = append(agents, startAgent(b, p, "n"+string(rune('1'+i)), "127.0.0.1:0"))
	}
	r := newRelay(b, p, agents...)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- flow.Serve(ctx, l, p.server, r) }()
	b.Cleanup(func() { cancel(); <-done })
	dial := func(addr string) agentapi.ObserverClient {
		c, closeConn, err := agentapi.DialObserverTCP(addr, p.client.Clone(), nil)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { closeConn() })
		return c
	}
	return agents, dial(l.Addr().String()), dial(agents[0].addr)
}

type run struct {
	received, lost uint64
	elapsed        time.Duration
	latencies      []time.Duration
}

func (r run) p99() time.Duration {
	if len(r.latencies) == 0 {
		return 0
	}
	slices.Sort(r.latencies)
	return r.latencies[len(r.latencies)*99/100]
}

// measure follows client while writers write total flows (each stamped
// with the wall clock) spread over agents, every interval per agent (0:
// as fast as possible), until every flow was received or reported lost.
func measure(b *testing.B, client agentapi.ObserverClient, agents []*agent, total int, interval time.Duration) run {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	stream, err := client.GetFlows(ctx, &agentapi.GetFlowsRequest{Follow: true, SinceNs: time.Now().UnixNano()})
	if err != nil {
		b.Fatal(err)
	}
	// The stream is open on every agent once a first marker flow is seen.
	for _, a := range agents {
		a.write(time.Now().UnixNano(), agentapi.Verdict_DROPPED)
	}
	for seen := 0; seen < len(agents); {
		resp, err := stream.Recv()
		if err != nil {
			b.Fatal(err)
		}
		if resp.GetFlow() != nil {
			seen++
		}
	}
	var res run
	start := time.Now()
	var wg sync.WaitGroup
	per := total / len(agents)
	for _, a := range agents {
		wg.Go(func() {
			next := time.Now()
			for range per {
				if interval > 0 {
					next = next.Add(interval)
					time.Sleep(time.Until(next))
				}
				a.write(time.Now().UnixNano(), agentapi.Verdict_FORWARDED)
			}
		})
	}
	for res.received+res.lost < uint64(per*len(agents)) {
		resp, err := stream.Recv()
		if err != nil {
			b.Fatal(err)
		}
		if f := resp.GetFlow(); f != nil {
			res.received++
			res.latencies = append(res.latencies, time.Since(time.Unix(0, f.GetTimeNs())))
		}
		res.lost += resp.GetLost().GetCount()
	}
	res.elapsed = time.Since(start)
	wg.Wait()
	return res
}

// BenchmarkRelayThroughput: flows/s a reader gets merged from 8 agents
// whose rings are full (4095 flows each, interleaved in time), against
// reading one agent's ring directly.
func BenchmarkRelayThroughput(b *testing.B) {
	agents, viaRelay, direct := benchSetup(b, 8)
	const perAgent = flow.DefaultRingSize
	for i := range perAgent * len(agents) {
		agents[i%len(agents)].write(int64(i+1), agentapi.Verdict_FORWARDED)
	}
	readAll := func(c agentapi.ObserverClient) (n int) {
		stream, err := c.GetFlows(context.Background(), &agentapi.GetFlowsRequest{})
		if err != nil {
			b.Fatal(err)
		}
		for {
			resp, err := stream.Recv()
			if err != nil {
				return n
			}
			if resp.GetFlow() != nil {
				n++
			}
		}
	}
	var merged, base time.Duration
	for b.Loop() {
		start := time.Now()
		if n := readAll(viaRelay); n != perAgent*len(agents) {
			b.Fatalf("relay gave %d flows, want %d", n, perAgent*len(agents))
		}
		merged += time.Since(start)
		start = time.Now()
		if n := readAll(direct); n != perAgent {
			b.Fatalf("agent gave %d flows, want %d", n, perAgent)
		}
		base += time.Since(start)
	}
	rate := float64(perAgent*len(agents)*b.N) / merged.Seconds()
	baseRate := float64(perAgent*b.N) / base.Seconds()
	b.ReportMetric(rate, "merged-flows/s")
	b.ReportMetric(baseRate, "direct-flows/s")
	b.ReportMetric(rate/baseRate, "ratio-to-direct")
}

// BenchmarkRelayLatency: p99 time from a flow entering its agent's ring to
// the reader, through the relay (8 agents, 1000 flows/s each) and directly
// (one agent at the same rate).
func BenchmarkRelayLatency(b *testing.B) {
	agents, viaRelay, direct := benchSetup(b, 8)
	total := max(b.N, 8000)
	base := measure(b, direct, agents[:1], total/8, time.Millisecond)
	b.ResetTimer()
	got := measure(b, viaRelay, agents, total, time.Millisecond)
	b.StopTimer()
	b.ReportMetric(float64(got.p99().Microseconds())/1000, "relay-p99-ms")
	b.ReportMetric(float64(base.p99().Microseconds())/1000, "direct-p99-ms")
	b.ReportMetric(float64(got.p99()-base.p99())/1e6, "added-p99-ms")
	b.ReportMetric(float64(got.received)/got.elapsed.Seconds(), "merged-flows/s")
}

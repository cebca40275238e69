package datapathbench

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/weftnet/weft/agent/flows"
	"github.com/weftnet/weft/datapath"
	"github.com/weftnet/weft/datapath/datapathtest"
	"github.com/weftnet/weft/flow"
	"github.com/weftnet/weft/internal/testgate"
)

// BenchmarkFlowRecordingThroughput measures what recording flows costs a
// cross-node TCP stream (tunnel mode): two Weft labs alike but for the
// agent's flow component, which reads, enriches and rings every event on
// each node of the "on" lab and does not run in the "off" lab (the agent's
// --flows=false). Rounds are paired and interleaved; the median paired
// on/off ratio is reported (goal ≥ 0.97). "new-flows" is the default
// (an event per new connection and per drop); "trace-all" emits one per
// forwarded packet (the datapath's TraceAllForwards), the worst case.
func BenchmarkFlowRecordingThroughput(b *testing.B) {
	testgate.Root(b)
	for _, c := range []struct {
		name     string
		traceAll bool
	}{{"new-flows", false}, {"trace-all", true}} {
		b.Run(c.name, func(b *testing.B) {
			opt := func(cfg *datapath.Config) { cfg.TraceAllForwards = c.traceAll }
			for range b.N {
				onLab, offLab := datapathtest.New(b, datapath.ModeTunnel, 2, opt), datapathtest.New(b, datapath.ModeTunnel, 2, opt)
				oc, os := pair(b, onLab)
				fc, fs := pair(b, offLab)
				recorded := record(b, onLab)
				on, off, ratios := pairedRounds(b, [2]*datapathtest.Pod{oc, os}, [2]*datapathtest.Pod{fc, fs})
				n, f, r := median(on), median(off), median(ratios)
				flowCount := recorded()
				b.ReportMetric(n/1e9, "on-Gbit/s")
				b.ReportMetric(f/1e9, "off-Gbit/s")
				b.ReportMetric(r, "ratio")
				b.ReportMetric(float64(flowCount), "flows-recorded")
				b.Logf("%s: observe on %.2f Gbit/s %v, off %.2f Gbit/s %v, median paired ratio %.3f, %d flows recorded",
					c.name, n/1e9, gbits(on), f/1e9, gbits(off), r, flowCount)
				if flowCount == 0 {
					b.Fatal("the on lab recorded no flows: the comparison would measure nothing")
				}
			}
		})
	}
}

// record runs the agent's flow component on every node of lab until the
// benchmark ends and returns a function that counts the flows recorded.
func record(b *testing.B, lab *datapathtest.Lab) func() uint64 {
	ctx, cancel := context.WithCancel(context.Background())
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	var comps []*flows.Component
	done := make(chan error, len(lab.Nodes))
	for _, n := range lab.Nodes {
		c, err := flows.New(flow.DefaultConfig(), n.DP, &flow.Enricher{Node: n.Name, Cluster: "bench"}, prometheus.NewRegistry(), log)
		if err != nil {
			b.Fatal(err)
		}
		comps = append(comps, c)
		go func() { done <- c.Run(ctx) }()
	}
	b.Cleanup(func() {
		cancel()
		for range lab.Nodes {
			if err := <-done; err != nil {
				b.Errorf("flow component: %v", err)
			}
		}
	})
	return func() uint64 {
		var total uint64
		for _, c := range comps {
			st, err := c.Observer().ServerStatus(ctx, nil)
			if err != nil {
				b.Fatal(fmt.Errorf("flow status: %w", err))
			}
			total += st.GetSeenFlows()
		}
		return total
	}
}

package flow

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/weftnet/weft/api/agentapi"
)

func collect(t *testing.T, o *Observer, req *agentapi.GetFlowsRequest) (flows []*agentapi.Flow, lost uint64) {
	t.Helper()
	err := o.Stream(context.Background(), req, func(r *agentapi.GetFlowsResponse) error {
		if f := r.GetFlow(); f != nil {
			flows = append(flows, f)
		}
		lost += r.GetLost().GetCount()
		return nil
	})
	if err != nil {
		t.Fatalf("stream: %v", err)
	}
	return flows, lost
}

// A flow the proxy wrote before a late datapath record of an older time
// is still found by a since query (the connectivity test's flow
// validation missed L7 records this way).
func TestObserverSinceFindsFlowsWrittenOutOfOrder(t *testing.T) {
	r := NewRing(100)
	sec := int64(time.Second)
	for _, s := range []int64{100, 200, 199, 201} {
		r.Write(flowAt(s*sec, agentapi.Verdict_FORWARDED, "client-1"))
	}
	seconds := func(req *agentapi.GetFlowsRequest) []int64 {
		flows, _ := collect(t, NewObserver(r, "n1"), req)
		var got []int64
		for _, f := range flows {
			got = append(got, f.TimeNs/sec)
		}
		return got
	}
	if got := seconds(&agentapi.GetFlowsRequest{SinceNs: 200 * sec}); !slices.Equal(got, []int64{200, 201}) {
		t.Errorf("since 200 s over times 100, 200, 199, 201 s: got %v s, want [200 201]", got)
	}
	if got := seconds(&agentapi.GetFlowsRequest{SinceNs: 150 * sec, UntilNs: 199 * sec}); !slices.Equal(got, []int64{199}) {
		t.Errorf("from 150 s until 199 s: got %v s, want [199] (written after the flow of 200 s)", got)
	}
}

func TestObserverLastSinceUntilAndFilters(t *testing.T) {
	r := NewRing(100)
	for i := range 10 {
		v := agentapi.Verdict_FORWARDED
		if i%2 == 1 {
			v = agentapi.Verdict_DROPPED
		}
		r.Write(flowAt(int64(i+1), v, "client-1"))
	}
	o := NewObserver(r, "n1")
	dropped := &agentapi.FlowFilter{Verdict: []agentapi.Verdict{agentapi.Verdict_DROPPED}}
	cases := []struct {
		name  string
		req   *agentapi.GetFlowsRequest
		times []int64
	}{
		{"all", &agentapi.GetFlowsRequest{}, []int64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}},
		{"last 3 dropped", &agentapi.GetFlowsRequest{Number: 3, Whitelist: []*agentapi.FlowFilter{dropped}}, []int64{6, 8, 10}},
		{"not dropped since 5", &agentapi.GetFlowsRequest{SinceNs: 5, Blacklist: []*agentapi.FlowFilter{dropped}}, []int64{5, 7, 9}},
		{"until 3", &agentapi.GetFlowsRequest{UntilNs: 3}, []int64{1, 2, 3}},
		{"last 2 before 6", &agentapi.GetFlowsRequest{Number: 2, UntilNs: 6}, []int64{5, 6}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			flows, _ := collect(t, o, tc.req)
			var got []int64
			for _, f := range flows {
				got = append(got, f.TimeNs)
			}
			if len(got) != len(tc.times) {
				t.Fatalf("times = %v, want %v", got, tc.times)
			}
			for i := range got {
				if got[i] != tc.times[i] {
					t.Fatalf("times = %v, want %v", got, tc.times)
				}
			}
		})
	}
}

// A reader whose sends block does not hold up the writer or another
// reader; once it reads again it is told how many flows it missed.
func TestObserverSlowReaderLosesFlowsAndIsTold(t *testing.T) {
	const size, total = 16, 1000
	r := NewRing(size)
	o := NewObserver(r, "n1")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r.Write(flowAt(1, agentapi.Verdict_FORWARDED, "a"))
	// Both readers start at the first flow, then follow.
	req := &agentapi.GetFlowsRequest{Follow: true, SinceNs: 1, UntilNs: total}

	type result struct {
		flows, lost uint64
		err         error
	}
	release, slowStuck := make(chan struct{}), make(chan struct{})
	slow, fast := make(chan result, 1), make(chan result, 1)
	go func() {
		var res result
		first := true
		res.err = o.Stream(ctx, req, func(resp *agentapi.GetFlowsResponse) error {
			if first { // a client that stopped reading
				first = false
				close(slowStuck)
				<-release
			}
			if resp.GetFlow() != nil {
				res.flows++
			}
			res.lost += resp.GetLost().GetCount()
			return nil
		})
		slow <- res
	}()
	<-slowStuck
	fastStarted := make(chan struct{})
	go func() {
		var res result
		res.err = o.Stream(ctx, req, func(resp *agentapi.GetFlowsResponse) error {
			if res.flows == 0 {
				close(fastStarted)
			}
			if resp.GetFlow() != nil {
				res.flows++
			}
			res.lost += resp.GetLost().GetCount()
			return nil
		})
		fast <- res
	}()
	<-fastStarted
	for i := 2; i <= total+1; i++ { // the last one, past until, ends both streams
		r.Write(flowAt(int64(i), agentapi.Verdict_FORWARDED, "a"))
	}
	// The writer is done and the fast reader ends while the slow one is stuck.
	f := <-fast
	close(release)
	s := <-slow
	for name, res := range map[string]result{"fast": f, "slow": s} {
		if res.err != nil {
			t.Fatalf("%s reader: %v", name, res.err)
		}
		if res.flows+res.lost != total {
			t.Errorf("%s reader: %d flows + %d lost, want %d in all", name, res.flows, res.lost, total)
		}
	}
	if s.lost < total-size-1 {
		t.Errorf("slow reader was told it lost %d flows, want at least %d", s.lost, total-size-1)
	}
}

func TestObserverRefusesBadFilters(t *testing.T) {
	o := NewObserver(NewRing(4), "n1")
	err := o.Stream(context.Background(), &agentapi.GetFlowsRequest{
		Whitelist: []*agentapi.FlowFilter{{Port: []uint32{70000}}},
	}, func(*agentapi.GetFlowsResponse) error { return nil })
	if !errors.Is(err, ErrBadRequest) || err.Error() != "--port 70000: accepted: a port number 1 to 65535" {
		t.Fatalf("err = %v, want a bad request naming port 70000", err)
	}
}

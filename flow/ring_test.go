package flow

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/weftnet/weft/api/agentapi"
)

func flowAt(ns int64, verdict agentapi.Verdict, srcPod string) *agentapi.Flow {
	return &agentapi.Flow{
		TimeNs:      ns,
		Verdict:     verdict,
		Source:      &agentapi.FlowEndpoint{Ip: "10.0.0.1", Port: 40000, Namespace: "dev", PodName: srcPod, Identity: 300},
		Destination: &agentapi.FlowEndpoint{Ip: "10.0.1.2", Port: 80, Namespace: "dev", PodName: "web-1", Identity: 301},
		Protocol:    "TCP",
		Node:        "n1",
	}
}

func TestRingKeepsTheNewestAndCountsWhatReadersLost(t *testing.T) {
	r := NewRing(4)
	for i := range 10 {
		r.Write(flowAt(int64(i+1), agentapi.Verdict_FORWARDED, "a"))
	}
	st := r.Status()
	if st.NumFlows != 4 || st.MaxFlows != 4 || st.SeenFlows != 10 {
		t.Fatalf("status = %d/%d seen %d, want 4/4 seen 10", st.NumFlows, st.MaxFlows, st.SeenFlows)
	}
	f, next, lost, ok := r.Read(0)
	if !ok || lost != 6 || f.TimeNs != 7 || next != 7 {
		t.Fatalf("read from 0 = time %d next %d lost %d ok %v, want the flow of time 7, next 7, 6 lost", f.GetTimeNs(), next, lost, ok)
	}
	if got := r.Status().LostFlows; got != 6 {
		t.Errorf("lost counter = %d, want 6", got)
	}
	if _, _, _, ok := r.Read(10); ok {
		t.Error("read past the newest flow succeeded")
	}
	if seq := r.Last(2, func(*agentapi.Flow) bool { return true }); seq != 8 {
		t.Errorf("Last(2) = %d, want 8", seq)
	}
	if seq := r.Since(time.Unix(0, 9)); seq > 8 {
		t.Errorf("Since(9) = %d, want at most 8 (the flow of time 9)", seq)
	}
	// A flow written after newer ones (a datapath record the event reader
	// wrote after the L7 proxy's): Since still starts before the newer.
	r = NewRing(16)
	for _, s := range []int64{100, 200, 199, 201} {
		r.Write(flowAt(s*int64(time.Second), agentapi.Verdict_FORWARDED, "a"))
	}
	if seq := r.Since(time.Unix(200, 0)); seq > 1 {
		t.Errorf("Since(200 s) over times 100, 200, 199, 201 s = %d; want at most 1 (the flow of 200 s)", seq)
	}
	if seq := r.Since(time.Unix(200, 0)); seq < 1 {
		t.Errorf("Since(200 s) = %d; the flow of 100 s is older than the slack, want 1", seq)
	}
}

func TestRingWaitWakesOnWrite(t *testing.T) {
	r := NewRing(8)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	wg.Add(1)
	var err error
	go func() { defer wg.Done(); err = r.Wait(ctx, 0) }()
	r.Write(flowAt(1, agentapi.Verdict_DROPPED, "a"))
	wg.Wait()
	if err != nil {
		t.Fatalf("wait: %v", err)
	}
}

func TestRingRateOverWhatItHolds(t *testing.T) {
	now := time.Unix(1000, 0)
	r := NewRing(10)
	r.now = func() time.Time { return now }
	// 20 flows over the last 2 seconds; the ring keeps the last 10 (1 s).
	for i := range 20 {
		r.Write(flowAt(now.Add(-2*time.Second+time.Duration(i+1)*100*time.Millisecond).UnixNano(), agentapi.Verdict_FORWARDED, "a"))
	}
	if got := r.Status().FlowsPerSecond; got < 9 || got > 11 {
		t.Errorf("flows/s = %.2f, want about 10", got)
	}
}

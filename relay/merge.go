package relay

import (
	"container/heap"
	"context"
	"errors"
	"io"
	"slices"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/weftnet/weft/api/agentapi"
	"github.com/weftnet/weft/flow"
)

// event is what a peer's reader reports to the merge.
type event struct {
	peer    int
	resp    *agentapi.GetFlowsResponse // a flow or lost flows
	down    error                      // the peer became unreachable
	up      bool                       // it is reachable again
	ended   bool                       // its stream is over
	arrived time.Time
}

// GetFlows implements agentapi.ObserverServer.
func (r *Relay) GetFlows(req *agentapi.GetFlowsRequest, stream agentapi.Observer_GetFlowsServer) error {
	err := r.Stream(stream.Context(), req, stream.Send)
	if err != nil && stream.Context().Err() != nil {
		return nil
	}
	return err
}

// Stream runs req on every peer and sends the merged answer.
func (r *Relay) Stream(ctx context.Context, req *agentapi.GetFlowsRequest, send func(*agentapi.GetFlowsResponse) error) error {
	if _, err := flow.Compile(req.GetWhitelist(), req.GetBlacklist()); err != nil {
		return status.Error(codes.InvalidArgument, err.Error())
	}
	if req.GetUntilNs() != 0 && req.GetSinceNs() > req.GetUntilNs() {
		return status.Error(codes.InvalidArgument, "since is after until: nothing can match")
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	peers := r.peersFor(ctx)
	events := make(chan event, 64*max(len(peers), 1))
	for i, p := range peers {
		go r.read(ctx, i, p, req, events)
	}
	if !req.GetFollow() && req.GetNumber() > 0 {
		return r.lastN(ctx, peers, req.GetNumber(), events, send)
	}
	m := &merger{maxDelay: r.cfg.MaxDelay, peers: make([]peerState, len(peers))}
	for i := range m.peers {
		m.peers[i].live = true
	}
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	var sentHB int64
	for {
		for {
			f, ok := m.next(time.Now())
			if !ok {
				break
			}
			if err := send(&agentapi.GetFlowsResponse{Response: &agentapi.GetFlowsResponse_Flow{Flow: f}}); err != nil {
				return err
			}
		}
		if m.ended == len(peers) && m.q.Len() == 0 {
			return nil
		}
		// Idle: say up to when everything was sent, so that a relay
		// reading this one (another cluster's) need not wait for it.
		if hb := m.watermark(); m.q.Len() == 0 && hb > sentHB {
			sentHB = hb
			if err := send(&agentapi.GetFlowsResponse{Response: &agentapi.GetFlowsResponse_Heartbeat{
				Heartbeat: &agentapi.Heartbeat{Node: "relay", TimeNs: hb}}}); err != nil {
				return err
			}
		}
		if m.q.Len() > 0 {
			timer.Reset(time.Until(m.q[0].arrived.Add(m.maxDelay)))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-timer.C:
		case ev := <-events:
			if note := m.apply(ev, peers[ev.peer]); note != nil {
				if err := send(note); err != nil {
					return err
				}
			}
		}
	}
}

// read streams req from one peer into events. Following, it reconnects
// after a failure and resumes after the last flow it passed on.
func (r *Relay) read(ctx context.Context, i int, p *peer, req *agentapi.GetFlowsRequest, events chan<- event) {
	emit := func(ev event) bool {
		ev.peer = i
		select {
		case events <- ev:
			return true
		case <-ctx.Done():
			return false
		}
	}
	// After a failure, resume after the last flow passed on, or, if none
	// was, from when this stream started: nothing is sent twice and
	// nothing the agent still holds is missed.
	resume := max(req.GetSinceNs(), time.Now().UnixNano())
	var lastNs int64
	down, attempted := false, false
	for {
		sreq := proto.Clone(req).(*agentapi.GetFlowsRequest)
		if attempted && req.GetFollow() {
			sreq.Number, sreq.SinceNs = 0, max(resume, lastNs+1)
		}
		attempted = true
		err := func() error {
			stream, err := p.client.GetFlows(p.outgoing(ctx), sreq)
			if err != nil {
				return err
			}
			first := true
			for {
				resp, err := stream.Recv()
				if err != nil {
					return err
				}
				if first && down {
					down = false
					if !emit(event{up: true}) {
						return ctx.Err()
					}
				}
				first = false
				if f := resp.GetFlow(); f != nil {
					lastNs = f.GetTimeNs()
				}
				if !emit(event{resp: resp, arrived: time.Now()}) {
					return ctx.Err()
				}
			}
		}()
		if ctx.Err() != nil {
			return
		}
		if errors.Is(err, io.EOF) {
			emit(event{ended: true})
			return
		}
		if s, ok := status.FromError(err); ok && s.Code() == codes.InvalidArgument {
			emit(event{down: err, ended: true})
			return
		}
		if !down {
			down = true
			if !emit(event{down: err}) {
				return
			}
		}
		if !req.GetFollow() {
			emit(event{ended: true})
			return
		}
		select {
		case <-time.After(r.cfg.Retry):
		case <-ctx.Done():
			return
		}
	}
}

// lastN collects every peer's last n flows and sends the newest n overall.
func (r *Relay) lastN(ctx context.Context, peers []*peer, n uint64, events <-chan event, send func(*agentapi.GetFlowsResponse) error) error {
	var flows []*agentapi.Flow
	for ended := 0; ended < len(peers); {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case ev := <-events:
			switch {
			case ev.resp.GetFlow() != nil:
				flows = append(flows, ev.resp.GetFlow())
			case ev.resp.GetLost() != nil, ev.resp.GetNodeStatus() != nil: // a relay peer's nodes
				if err := send(ev.resp); err != nil {
					return err
				}
			case ev.down != nil:
				if err := send(downNote(peers[ev.peer], ev.down)); err != nil {
					return err
				}
			}
			if ev.ended {
				ended++
			}
		}
	}
	slices.SortStableFunc(flows, func(a, b *agentapi.Flow) int { return cmpTime(a, b) })
	for _, f := range flows[max(0, len(flows)-int(min(n, uint64(len(flows))))):] {
		if err := send(&agentapi.GetFlowsResponse{Response: &agentapi.GetFlowsResponse_Flow{Flow: f}}); err != nil {
			return err
		}
	}
	return nil
}

func downNote(p *peer, err error) *agentapi.GetFlowsResponse {
	msg := err.Error()
	if s, ok := status.FromError(err); ok {
		msg = s.Message()
	}
	return &agentapi.GetFlowsResponse{Response: &agentapi.GetFlowsResponse_NodeStatus{NodeStatus: &agentapi.NodeStatus{
		Node: p.Node, Address: p.Address, Connected: false, Error: msg}}}
}

func cmpTime(a, b *agentapi.Flow) int {
	switch {
	case a.GetTimeNs() < b.GetTimeNs():
		return -1
	case a.GetTimeNs() > b.GetTimeNs():
		return 1
	}
	return 0
}

// merger orders flows of several time-ordered sources.
type merger struct {
	maxDelay time.Duration
	q        queue
	peers    []peerState
	ended    int
}

type peerState struct {
	queued      int
	last        int64 // time of the newest flow received: later ones are not older
	live, ended bool
}

// apply takes in one event; it returns a message to pass on at once
// (lost flows, a peer's status), or nil.
func (m *merger) apply(ev event, p *peer) *agentapi.GetFlowsResponse {
	st := &m.peers[ev.peer]
	var note *agentapi.GetFlowsResponse
	switch {
	case ev.resp.GetFlow() != nil:
		heap.Push(&m.q, item{flow: ev.resp.GetFlow(), peer: ev.peer, arrived: ev.arrived})
		st.queued++
		st.last = max(st.last, ev.resp.GetFlow().GetTimeNs())
	case ev.resp.GetHeartbeat() != nil:
		st.last = max(st.last, ev.resp.GetHeartbeat().GetTimeNs())
	case ev.resp != nil:
		note = ev.resp
	case ev.down != nil:
		m.setLive(ev.peer, false)
		note = downNote(p, ev.down)
	case ev.up:
		m.setLive(ev.peer, true)
		note = &agentapi.GetFlowsResponse{Response: &agentapi.GetFlowsResponse_NodeStatus{NodeStatus: &agentapi.NodeStatus{
			Node: p.Node, Address: p.Address, Connected: true}}}
	}
	if ev.ended && !st.ended {
		st.ended = true
		m.ended++
		m.setLive(ev.peer, false)
	}
	return note
}

// watermark is the time up to which every live peer has sent all it has
// (0 while one has said nothing yet).
func (m *merger) watermark() int64 {
	var w int64
	for _, st := range m.peers {
		if !st.live {
			continue
		}
		if st.last == 0 {
			return 0
		}
		if w == 0 || st.last < w {
			w = st.last
		}
	}
	return w
}

func (m *merger) setLive(i int, live bool) {
	m.peers[i].live = live && !m.peers[i].ended
}

// next pops the oldest flow if it may go: no live peer can still send an
// older one (each has a flow queued, or has sent one at least as new), or
// it waited maxDelay.
func (m *merger) next(now time.Time) (*agentapi.Flow, bool) {
	if m.q.Len() == 0 {
		return nil, false
	}
	if now.Sub(m.q[0].arrived) < m.maxDelay {
		t := m.q[0].flow.GetTimeNs()
		for _, st := range m.peers {
			if st.live && st.queued == 0 && st.last < t {
				return nil, false
			}
		}
	}
	it := heap.Pop(&m.q).(item)
	m.peers[it.peer].queued--
	return it.flow, true
}

type item struct {
	flow    *agentapi.Flow
	peer    int
	arrived time.Time
}

// queue is a min-heap by flow time.
type queue []item

func (q queue) Len() int           { return len(q) }
func (q queue) Less(i, j int) bool { return q[i].flow.GetTimeNs() < q[j].flow.GetTimeNs() }
func (q queue) Swap(i, j int)      { q[i], q[j] = q[j], q[i] }
func (q *queue) Push(x any)        { *q = append(*q, x.(item)) }
func (q *queue) Pop() any {
	old := *q
	it := old[len(old)-1]
	*q = old[:len(old)-1]
	return it
}

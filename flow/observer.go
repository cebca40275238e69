package flow

import (
	"context"
	"errors"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/weftnet/weft/api/agentapi"
)

// Observer serves a ring's flows as the agentapi.Observer service.
type Observer struct {
	agentapi.UnimplementedObserverServer
	ring *Ring
	node string
	// heartbeat is how long a following reader waits without a flow before
	// it is sent a Heartbeat.
	heartbeat time.Duration
}

// HeartbeatInterval is how often an idle following reader gets a Heartbeat.
const HeartbeatInterval = 50 * time.Millisecond

// NewObserver serves ring, the flows node observes.
func NewObserver(ring *Ring, node string) *Observer {
	return &Observer{ring: ring, node: node, heartbeat: HeartbeatInterval}
}

// GetFlows implements agentapi.ObserverServer.
func (o *Observer) GetFlows(req *agentapi.GetFlowsRequest, stream agentapi.Observer_GetFlowsServer) error {
	err := o.Stream(stream.Context(), req, stream.Send)
	if err == nil || stream.Context().Err() != nil {
		return nil
	}
	if errors.Is(err, ErrBadRequest) {
		return status.Error(codes.InvalidArgument, err.Error())
	}
	return err
}

// Status reports the ring's fill level and rates.
func (o *Observer) Status() *agentapi.ServerStatusResponse { return o.ring.Status() }

// ServerStatus implements agentapi.ObserverServer.
func (o *Observer) ServerStatus(context.Context, *agentapi.ServerStatusRequest) (*agentapi.ServerStatusResponse, error) {
	st := o.ring.Status()
	st.Nodes = []*agentapi.NodeStatus{{Node: o.node, Connected: true}}
	return st, nil
}

// ErrBadRequest wraps the errors of a request that cannot be served.
var ErrBadRequest = errors.New("bad flows request")

type badRequest struct{ err error }

func (b badRequest) Error() string        { return b.err.Error() }
func (b badRequest) Is(target error) bool { return target == ErrBadRequest }
func (b badRequest) Unwrap() error        { return b.err }

// Stream sends what req asks for, then returns: at the end of the ring,
// or, with follow, when ctx ends or a flow passes req's until. A send that
// blocks only delays this reader: it loses flows (and is told so) but never
// slows the writer.
func (o *Observer) Stream(ctx context.Context, req *agentapi.GetFlowsRequest, send func(*agentapi.GetFlowsResponse) error) error {
	match, err := Compile(req.GetWhitelist(), req.GetBlacklist())
	if err != nil {
		return badRequest{err}
	}
	since, until := req.GetSinceNs(), req.GetUntilNs()
	if until != 0 && since > until {
		return badRequest{errors.New("since is after until: nothing can match")}
	}
	inTime := func(f *agentapi.Flow) bool {
		return f.GetTimeNs() >= since && (until == 0 || f.GetTimeNs() <= until)
	}
	var seq uint64
	switch {
	case req.GetNumber() > 0:
		seq = o.ring.Last(req.GetNumber(), func(f *agentapi.Flow) bool { return inTime(f) && match(f) })
	case since > 0:
		seq = o.ring.Since(time.Unix(0, since))
	case req.GetFollow():
		seq = o.ring.Next()
	default:
		seq = o.ring.Oldest()
	}
	var sent uint64
	for {
		f, next, lost, ok := o.ring.Read(seq)
		if !ok {
			if !req.GetFollow() {
				return nil
			}
			wctx, cancel := context.WithTimeout(ctx, o.heartbeat)
			err := o.ring.Wait(wctx, seq)
			cancel()
			if ctx.Err() != nil {
				return nil
			}
			if err != nil { // idle: say so, with the time up to which all was sent
				hb := &agentapi.Heartbeat{Node: o.node, TimeNs: time.Now().UnixNano()}
				if err := send(&agentapi.GetFlowsResponse{Response: &agentapi.GetFlowsResponse_Heartbeat{Heartbeat: hb}}); err != nil {
					return err
				}
			}
			continue
		}
		seq = next
		if lost > 0 {
			err := send(&agentapi.GetFlowsResponse{Response: &agentapi.GetFlowsResponse_Lost{
				Lost: &agentapi.LostFlows{Node: o.node, Count: lost, Cause: "reader too slow"}}})
			if err != nil {
				return err
			}
		}
		if until != 0 && f.GetTimeNs() > until && req.GetFollow() {
			return nil // without follow, read on: a later flow may be older
		}
		if !inTime(f) || !match(f) {
			continue
		}
		if err := send(&agentapi.GetFlowsResponse{Response: &agentapi.GetFlowsResponse_Flow{Flow: f}}); err != nil {
			return err
		}
		sent++
		if req.GetNumber() > 0 && !req.GetFollow() && sent == req.GetNumber() {
			return nil
		}
	}
}

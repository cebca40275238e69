package policy

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/weftnet/weft/api/agentapi"
	"github.com/weftnet/weft/datapath"
	"github.com/weftnet/weft/kvstore"
	"github.com/weftnet/weft/policy"
	"github.com/weftnet/weft/state/records"
)

// FlowSource streams the node's flow records (*flow.Observer).
type FlowSource interface {
	Stream(ctx context.Context, req *agentapi.GetFlowsRequest, send func(*agentapi.GetFlowsResponse) error) error
}

// API implements agentapi.PolicyServer: policy writes go to the store, views
// come from the engine.
type API struct {
	agentapi.UnimplementedPolicyServer
	e          *Engine
	flowSource FlowSource
}

// NewAPI serves e's node; flows come from flowSource.
func NewAPI(e *Engine, flowSource FlowSource) *API {
	return &API{e: e, flowSource: flowSource}
}

func (s *API) Import(ctx context.Context, req *agentapi.ImportPolicyRequest) (*agentapi.ImportPolicyResponse, error) {
	if req.Namespace != "" && records.ValidateNamespace(req.Namespace) != nil {
		return nil, status.Errorf(codes.InvalidArgument, "import policies: namespace %q must be a lowercase DNS label of 1 to %d characters; nothing was stored", req.Namespace, records.MaxNamespace)
	}
	docs := policy.ParseDocumentsIn(req.Documents, req.Namespace)
	if len(docs) == 0 {
		return nil, status.Error(codes.InvalidArgument, "import policies: the input holds no YAML document")
	}
	resp := &agentapi.ImportPolicyResponse{}
	var errs []string
	var ps []*policy.Policy
	for _, d := range docs {
		r := &agentapi.ImportedDocument{Index: uint32(d.Index)}
		if d.Err != nil {
			r.Error = d.Err.Error()
			errs = append(errs, r.Error)
		} else {
			p := d.Policy
			r.ApiVersion, r.Kind, r.Namespace, r.Name = p.APIVersion, p.Kind, p.Namespace, p.Name
			ps = append(ps, p)
		}
		resp.Documents = append(resp.Documents, r)
	}
	if len(errs) == 0 {
		for i, err := range s.e.checkEnforceable(ps) {
			if err != nil {
				msg := fmt.Sprintf("document %d (%s %s): %v", i+1, ps[i].Kind, ps[i].ID(), err)
				resp.Documents[i].Error = msg
				errs = append(errs, msg)
			}
		}
	}
	if len(errs) > 0 {
		if req.DryRun {
			return resp, nil
		}
		// The per-document results travel as the status's detail.
		st := status.New(codes.InvalidArgument, "import policies: nothing was stored: "+strings.Join(errs, "\n"))
		if withResp, err := st.WithDetails(resp); err == nil {
			st = withResp
		}
		return nil, st.Err()
	}
	if req.DryRun {
		return resp, nil
	}
	source := req.Source
	if source == "" {
		source = "cli"
	}
	if err := s.store(ctx, ps, source); err != nil {
		return nil, status.Error(codes.Unavailable, err.Error())
	}
	resp.Stored = true
	return resp, nil
}

// store writes every policy (a few at a time); if a write fails, the
// policies are put back as they were, so an import is never half-applied.
func (s *API) store(ctx context.Context, ps []*policy.Policy, source string) error {
	kvs, err := s.e.store.List(ctx, s.e.keys.PoliciesPrefix())
	if err != nil {
		return fmt.Errorf("read stored policies: %w (nothing was stored)", err)
	}
	old := map[string][]byte{}
	for _, kv := range kvs {
		old[kv.Key] = kv.Value
	}
	keys := make([]string, len(ps))
	values := make([][]byte, len(ps))
	for i, p := range ps {
		keys[i] = s.e.keys.Policy(p.StoreNamespace(), p.Name)
		values[i], err = records.Encode(keys[i], &records.PolicyRef{
			Namespace: p.StoreNamespace(), Name: p.Name, Format: p.Format(), Source: source, Document: p.Document,
		})
		if err != nil {
			return err
		}
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(8)
	for i := range ps {
		g.Go(func() error {
			if _, err := s.e.store.Update(gctx, keys[i], values[i]); err != nil {
				return fmt.Errorf("store policy %s: %w", ps[i].ID(), err)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		uctx := context.WithoutCancel(ctx)
		for _, k := range keys {
			if v, ok := old[k]; ok {
				s.e.store.Update(uctx, k, v)
			} else {
				s.e.store.Delete(uctx, k)
			}
		}
		return fmt.Errorf("%w (the policies were put back as they were)", err)
	}
	return nil
}

// policyKey maps an API namespace (empty: clusterwide) to the store's.
func policyKey(ns string) string {
	if ns == "" {
		return records.PolicyClusterwide
	}
	return ns
}

func (s *API) Delete(ctx context.Context, req *agentapi.DeletePolicyRequest) (*agentapi.DeletePolicyResponse, error) {
	if req.Name == "" {
		return nil, status.Error(codes.InvalidArgument, "delete policy: name is empty")
	}
	key := s.e.keys.Policy(policyKey(req.Namespace), req.Name)
	_, err := s.e.store.Get(ctx, key)
	if errors.Is(err, kvstore.ErrNotFound) {
		return &agentapi.DeletePolicyResponse{}, nil
	}
	if err == nil {
		err = s.e.store.Delete(ctx, key)
	}
	if err != nil {
		return nil, status.Errorf(codes.Unavailable, "delete policy %s: %v", key, err)
	}
	return &agentapi.DeletePolicyResponse{Existed: true}, nil
}

func (s *API) List(ctx context.Context, _ *agentapi.ListPoliciesRequest) (*agentapi.ListPoliciesResponse, error) {
	resp := &agentapi.ListPoliciesResponse{}
	for _, d := range s.e.details() {
		resp.Policies = append(resp.Policies, d.Summary)
	}
	return resp, nil
}

func (s *API) Get(ctx context.Context, req *agentapi.GetPolicyRequest) (*agentapi.PolicyDetail, error) {
	for _, d := range s.e.details() {
		if d.Summary.Namespace == req.Namespace && d.Summary.Name == req.Name {
			return d, nil
		}
	}
	name := req.Name
	if req.Namespace != "" {
		name = req.Namespace + "/" + name
	}
	return nil, status.Errorf(codes.NotFound, "no policy %s in the store (see weft policy list)", name)
}

// Flows streams the node's new flows in the v1 FlowEvent form, read from
// the node's flow ring (any number of readers; Observer.GetFlows has the
// full records and filters). time_ns is now the wall clock.
func (s *API) Flows(req *agentapi.FlowsRequest, stream agentapi.Policy_FlowsServer) error {
	get := &agentapi.GetFlowsRequest{Follow: true}
	if req.DroppedOnly {
		get.Whitelist = []*agentapi.FlowFilter{{Verdict: []agentapi.Verdict{agentapi.Verdict_DROPPED}}}
	}
	ctx := stream.Context()
	err := s.flowSource.Stream(ctx, get, func(resp *agentapi.GetFlowsResponse) error {
		f := resp.GetFlow()
		if f == nil {
			return nil
		}
		src, dst := f.GetSource(), f.GetDestination()
		reason := f.GetDropReason()
		if reason == "" {
			reason = datapath.ReasonForwarded.String()
		}
		return stream.Send(&agentapi.FlowEvent{
			TimeNs: uint64(f.GetTimeNs()), Source: hostPort(src), Destination: hostPort(dst), Protocol: f.GetProtocolNumber(),
			SourceIdentity: src.GetIdentity(), DestinationIdentity: dst.GetIdentity(),
			Dropped: f.GetVerdict() == agentapi.Verdict_DROPPED, ReasonCode: f.GetDropReasonCode(), Reason: reason,
			Point: f.GetObservationPoint(), Node: f.GetNode(),
		})
	})
	if err != nil && ctx.Err() == nil {
		return status.Error(codes.Internal, err.Error())
	}
	return nil
}

func hostPort(ep *agentapi.FlowEndpoint) string {
	a, err := netip.ParseAddr(ep.GetIp())
	if err != nil {
		return ep.GetIp()
	}
	return netip.AddrPortFrom(a, uint16(ep.GetPort())).String()
}

package services

import (
	"cmp"
	"context"
	"errors"
	"net/netip"
	"slices"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/weftnet/weft/api/agentapi"
	"github.com/weftnet/weft/kvstore"
	"github.com/weftnet/weft/services"
)

// API implements agentapi.ServicesServer: service definitions are
// written through the agent, which validates and allocates them.
type API struct {
	agentapi.UnimplementedServicesServer
	s *Sync
}

// NewAPI serves service writes through s's allocator.
func NewAPI(s *Sync) *API { return &API{s: s} }

var applyModes = map[agentapi.ApplyMode]services.Mode{
	agentapi.ApplyMode_APPLY_MODE_CREATE_OR_UPDATE: services.CreateOrUpdate,
	agentapi.ApplyMode_APPLY_MODE_CREATE:           services.CreateOnly,
	agentapi.ApplyMode_APPLY_MODE_UPDATE:           services.UpdateOnly,
}

func (api *API) Apply(ctx context.Context, req *agentapi.ApplyServicesRequest) (*agentapi.ApplyServicesResponse, error) {
	mode, ok := applyModes[req.GetMode()]
	if !ok {
		return nil, status.Errorf(codes.InvalidArgument, "mode %v: accepted are CREATE_OR_UPDATE, CREATE and UPDATE", req.GetMode())
	}
	if len(req.GetServices()) == 0 {
		return nil, status.Error(codes.InvalidArgument, "no service given")
	}
	specs := make([]services.Spec, 0, len(req.GetServices()))
	for _, p := range req.GetServices() {
		s, err := services.FromAPI(p)
		if err != nil {
			return nil, status.Errorf(codes.InvalidArgument, "service %s/%s: %v", p.GetNamespace(), p.GetName(), err)
		}
		specs = append(specs, s)
	}
	written, err := api.s.alloc.Apply(ctx, mode, specs...)
	if err != nil {
		return nil, serviceError(err)
	}
	resp := &agentapi.ApplyServicesResponse{}
	for _, r := range written {
		resp.Services = append(resp.Services, services.ToAPI(services.SpecOf(r), r.Cluster))
	}
	return resp, nil
}

func (api *API) Delete(ctx context.Context, req *agentapi.DeleteServiceRequest) (*agentapi.DeleteServiceResponse, error) {
	ns, err := serviceName(req.GetNamespace(), req.GetName())
	if err != nil {
		return nil, err
	}
	existed, err := api.s.alloc.Delete(ctx, ns, req.GetName())
	if err != nil {
		return nil, serviceError(err)
	}
	return &agentapi.DeleteServiceResponse{Existed: existed}, nil
}

func (api *API) Get(ctx context.Context, req *agentapi.GetServiceRequest) (*agentapi.ServiceSpec, error) {
	ns, err := serviceName(req.GetNamespace(), req.GetName())
	if err != nil {
		return nil, err
	}
	r, err := api.s.alloc.Get(ctx, ns, req.GetName())
	if err != nil {
		return nil, serviceError(err)
	}
	return services.ToAPI(services.SpecOf(r), r.Cluster), nil
}

func serviceName(ns, name string) (string, error) {
	if ns == "" {
		ns = "default"
	}
	probe := services.Spec{Namespace: ns, Name: name, Ports: []services.Port{{Port: 1}}}
	if err := probe.Validate(); err != nil {
		return "", status.Error(codes.InvalidArgument, err.Error())
	}
	return ns, nil
}

func serviceError(err error) error {
	switch {
	case errors.Is(err, services.ErrInvalid):
		return status.Error(codes.InvalidArgument, err.Error())
	case errors.Is(err, services.ErrExists):
		return status.Error(codes.AlreadyExists, err.Error())
	case errors.Is(err, services.ErrNotFound):
		return status.Error(codes.NotFound, err.Error())
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return status.FromContextError(err).Err()
	case errors.Is(err, kvstore.ErrLockLost):
		return status.Error(codes.Aborted, err.Error())
	}
	return status.Error(codes.Unavailable, err.Error())
}

// List answers ListServices from the last computation: every
// frontend with its type, the numbered backends.
func (s *Sync) List() *agentapi.ListServicesResponse {
	s.mu.Lock()
	views := slices.Clone(s.view)
	s.mu.Unlock()
	resp := &agentapi.ListServicesResponse{}
	for _, v := range views {
		svc := &agentapi.Service{Id: v.number, Namespace: v.namespace, Name: v.name, Annotations: v.annotations, SessionAffinity: v.sessionAffinity,
			Source: v.source}
		for _, f := range v.frontends {
			svc.Frontends = append(svc.Frontends, &agentapi.Frontend{Address: f.Addr.String() + "/" + f.Protocol, Type: f.Kind})
		}
		seen := map[string]bool{}
		for _, b := range v.backends {
			addr := netip.AddrPortFrom(b.IP, b.Port).String()
			if len(v.frontends) > 0 && slices.ContainsFunc(v.frontends, func(f services.Frontend) bool { return f.Protocol != v.frontends[0].Protocol }) {
				addr += "/" + b.Protocol
			}
			if seen[addr] {
				continue
			}
			seen[addr] = true
			be := &agentapi.Backend{Address: addr, Node: b.Node, Cluster: b.Cluster, Ready: b.Ready}
			if b.PodIP.IsValid() {
				be.PodAddress = netip.AddrPortFrom(b.PodIP, b.Port).String()
			}
			svc.Backends = append(svc.Backends, be)
		}
		resp.Services = append(resp.Services, svc)
	}
	slices.SortFunc(resp.Services, func(a, b *agentapi.Service) int { return cmp.Compare(a.Id, b.Id) })
	return resp
}

// Count is the number of services this node has programmed.
func (s *Sync) Count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.view)
}

// CountGlobal is how many of them are global (service.cilium.io/global).
func (s *Sync) CountGlobal() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, v := range s.view {
		if v.annotations[services.AnnotationGlobal] == "true" {
			n++
		}
	}
	return n
}

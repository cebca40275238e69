package l7lb

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/weftnet/weft/api/agentapi"
	"github.com/weftnet/weft/kvstore"
	"github.com/weftnet/weft/proxy/l7lb"
	"github.com/weftnet/weft/state/records"
)

// API implements agentapi.L7LoadBalancingServer: documents are written
// through the agent, which checks them first.
type API struct {
	agentapi.UnimplementedL7LoadBalancingServer
	c *Component
}

// NewAPI serves document writes into c's cluster.
func NewAPI(c *Component) *API { return &API{c: c} }

// Apply checks every document, and that none selects a Service port a
// stored document of another name selects, before writing any.
func (api *API) Apply(ctx context.Context, req *agentapi.ApplyL7LBRequest) (*agentapi.ApplyL7LBResponse, error) {
	docs, err := l7lb.ParseDocuments(req.GetDocuments())
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	c := api.c
	stored, err := c.store.List(ctx, c.keys.L7LBPrefix(c.cfg.Cluster))
	if err != nil {
		return nil, storeError("list L7LoadBalancing documents", err)
	}
	have := map[string]records.L7LoadBalancingRef{}
	for _, kv := range stored {
		if r, err := c.keys.DecodeL7LB(kv.Key, kv.Value); err == nil {
			have[kv.Key] = r
		}
	}
	source := req.GetSource()
	if source == "" {
		source = "cli"
	}
	type write struct {
		key    string
		value  []byte
		result string
	}
	var (
		writes []write
		errs   []error
	)
	for i, d := range docs {
		p := d.Policy
		key := c.keys.L7LB(c.cfg.Cluster, p.Metadata.Namespace, p.Metadata.Name)
		for k, r := range have {
			if k != key && r.Namespace == p.Metadata.Namespace && r.Service == p.Spec.Service && int(r.Port) == p.Spec.Port {
				errs = append(errs, fmt.Errorf("document %d: spec.service %s port %d is selected by the stored L7LoadBalancing %s/%s; accepted is one per Service port (delete that one first: weft l7lb delete %s/%s)",
					i+1, p.Spec.Service, p.Spec.Port, r.Namespace, r.Name, r.Namespace, r.Name))
			}
		}
		rec := records.L7LoadBalancingRef{Cluster: c.cfg.Cluster, Namespace: p.Metadata.Namespace, Name: p.Metadata.Name,
			Service: p.Spec.Service, Port: uint16(p.Spec.Port), Source: source, Document: d.Text}
		value, err := records.Encode(key, &rec)
		if err != nil {
			errs = append(errs, fmt.Errorf("document %d: %w", i+1, err))
			continue
		}
		result := "created"
		if old, ok := have[key]; ok {
			if old.Source != source {
				errs = append(errs, fmt.Errorf("document %d: L7LoadBalancing %s/%s is owned by %q; accepted are documents of source %q only", i+1, rec.Namespace, rec.Name, old.Source, source))
			}
			result = "configured"
			rec.Version = old.Version
			if old == rec {
				result = "unchanged"
			}
		}
		writes = append(writes, write{key: key, value: value, result: result})
	}
	if len(errs) > 0 {
		return nil, status.Error(codes.InvalidArgument, errors.Join(errs...).Error())
	}
	resp := &agentapi.ApplyL7LBResponse{}
	for i, w := range writes {
		p := docs[i].Policy
		if req.GetDryRun() {
			w.result = "valid"
		} else if w.result != "unchanged" {
			if _, err := c.store.UpdateIfDifferent(ctx, w.key, w.value); err != nil {
				return nil, storeError("write "+w.key, err)
			}
		}
		resp.Documents = append(resp.Documents, &agentapi.AppliedL7LB{Namespace: p.Metadata.Namespace, Name: p.Metadata.Name,
			Service: p.Spec.Service, Port: uint32(p.Spec.Port), Result: w.result})
	}
	return resp, nil
}

// Delete removes a document; a missing one is not an error.
func (api *API) Delete(ctx context.Context, req *agentapi.DeleteL7LBRequest) (*agentapi.DeleteL7LBResponse, error) {
	ns, name := req.GetNamespace(), req.GetName()
	if ns == "" {
		ns = "default"
	}
	if err := records.ValidateNamespace(ns); err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "namespace: %v", err)
	}
	if err := records.ValidateObjectName(name); err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "name: %v", err)
	}
	c := api.c
	key := c.keys.L7LB(c.cfg.Cluster, ns, name)
	if _, err := c.store.Get(ctx, key); errors.Is(err, kvstore.ErrNotFound) {
		return &agentapi.DeleteL7LBResponse{}, nil
	} else if err != nil {
		return nil, storeError("read "+key, err)
	}
	if err := c.store.Delete(ctx, key); err != nil {
		return nil, storeError("delete "+key, err)
	}
	return &agentapi.DeleteL7LBResponse{Existed: true}, nil
}

// List gives the cluster's documents as the store has them and what this
// node does with each.
func (api *API) List(ctx context.Context, _ *agentapi.ListL7LBRequest) (*agentapi.ListL7LBResponse, error) {
	c := api.c
	stored, err := c.store.List(ctx, c.keys.L7LBPrefix(c.cfg.Cluster))
	if err != nil {
		return nil, storeError("list L7LoadBalancing documents", err)
	}
	st := c.Status()
	resp := &agentapi.ListL7LBResponse{}
	for _, kv := range stored {
		r, err := c.keys.DecodeL7LB(kv.Key, kv.Value)
		if err != nil {
			continue // not ours to show: a record this build cannot read
		}
		s := &agentapi.L7LBSummary{Namespace: r.Namespace, Name: r.Name, Service: r.Service, Port: uint32(r.Port), Source: r.Source}
		if p, err := l7lb.Parse([]byte(r.Document)); err != nil {
			s.Error = err.Error()
		} else {
			for _, b := range p.Spec.Backends {
				s.Backends = append(s.Backends, fmt.Sprintf("%s:%d=%d", b.Service, b.Port, b.Weight))
			}
		}
		switch n, ok := st[kv.Key]; {
		case !ok && s.Error == "":
			s.Error = "not served on this node yet"
		case ok:
			if n.Listener.IsValid() {
				s.Listener = n.Listener.String()
			}
			if s.Error == "" {
				s.Error = n.Error
			}
		}
		resp.Documents = append(resp.Documents, s)
	}
	slices.SortFunc(resp.Documents, func(a, b *agentapi.L7LBSummary) int {
		return strings.Compare(a.Namespace+"/"+a.Name, b.Namespace+"/"+b.Name)
	})
	return resp, nil
}

func storeError(what string, err error) error {
	return status.Errorf(codes.Unavailable, "%s: %v", what, err)
}

package ingress

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	networkingv1 "k8s.io/api/networking/v1"

	"github.com/weftnet/weft/agent/services"
	"github.com/weftnet/weft/api/agentapi"
	"github.com/weftnet/weft/kvstore"
	pingress "github.com/weftnet/weft/proxy/ingress"
	"github.com/weftnet/weft/state/records"
)

// API serves agentapi.IngressesServer.
type API struct {
	agentapi.UnimplementedIngressesServer
	c *Component
}

// NewAPI serves c's records.
func NewAPI(c *Component) *API { return &API{c: c} }

// write is one record Apply writes.
type write struct {
	key, kind, ns, name string
	value               []byte
}

// Apply checks every document and certificate, then writes them.
func (a *API) Apply(ctx context.Context, req *agentapi.ApplyIngressesRequest) (*agentapi.ApplyIngressesResponse, error) {
	source := req.GetSource()
	if source == "" {
		source = "cli"
	}
	ings, err := pingress.Parse(req.GetDocuments(), req.GetNamespace())
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	var writes []write
	for i, s := range req.GetSecrets() {
		rec := &records.IngressSecret{Cluster: a.c.cluster, Namespace: s.GetNamespace(), Name: s.GetName(), Source: source,
			CertPEM: string(s.GetCertPem()), KeyPEM: string(s.GetKeyPem())}
		if rec.Namespace == "" {
			rec.Namespace = ings[0].Namespace
		}
		key := a.c.keys.IngressSecret(a.c.cluster, rec.Namespace, rec.Name)
		v, err := records.Encode(key, rec)
		if err != nil {
			return nil, status.Errorf(codes.InvalidArgument, "tls secret %d (%s/%s): %v", i+1, rec.Namespace, rec.Name, errors.Unwrap(err))
		}
		if !named(ings, rec.Namespace, rec.Name) {
			return nil, status.Errorf(codes.InvalidArgument, "tls secret %s/%s: no Ingress of the input names it in spec.tls[].secretName", rec.Namespace, rec.Name)
		}
		writes = append(writes, write{key: key, kind: "Secret", ns: rec.Namespace, name: rec.Name, value: v})
	}
	for _, ing := range ings {
		doc, err := pingress.Document(ing)
		if err != nil {
			return nil, status.Errorf(codes.InvalidArgument, "ingress %s/%s: %v", ing.Namespace, ing.Name, err)
		}
		key := a.c.keys.Ingress(a.c.cluster, ing.Namespace, ing.Name)
		v, err := records.Encode(key, &records.Ingress{Cluster: a.c.cluster, Namespace: ing.Namespace, Name: ing.Name, Source: source, Document: doc})
		if err != nil {
			return nil, status.Errorf(codes.InvalidArgument, "ingress %s/%s: %v", ing.Namespace, ing.Name, err)
		}
		writes = append(writes, write{key: key, kind: "Ingress", ns: ing.Namespace, name: ing.Name, value: v})
	}
	// Records of another source (the Kubernetes mirror) are not taken over.
	for _, w := range writes {
		kv, err := a.c.store.Get(ctx, w.key)
		if errors.Is(err, kvstore.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, status.Errorf(codes.Unavailable, "read %s: %v", w.key, err)
		}
		if owner := ownerOf(a.c.keys, w, kv.Value); owner != "" && owner != source {
			return nil, status.Errorf(codes.FailedPrecondition, "%s %s/%s is owned by %s: nothing written (change it there)", strings.ToLower(w.kind), w.ns, w.name, owner)
		}
	}
	resp := &agentapi.ApplyIngressesResponse{}
	for _, w := range writes {
		changed, err := a.c.store.UpdateIfDifferent(ctx, w.key, w.value)
		if err != nil {
			return nil, status.Errorf(codes.Unavailable, "write %s: %v", w.key, err)
		}
		resp.Ingresses = append(resp.Ingresses, &agentapi.AppliedIngress{Namespace: w.ns, Name: w.name, Kind: w.kind, Changed: changed})
	}
	return resp, nil
}

func ownerOf(keys records.Keys, w write, value []byte) string {
	if w.kind == "Secret" {
		r, err := keys.DecodeIngressSecret(w.key, value)
		if err != nil {
			return ""
		}
		return r.Source
	}
	r, err := keys.DecodeIngress(w.key, value)
	if err != nil {
		return ""
	}
	return r.Source
}

func named(ings []networkingv1.Ingress, ns, name string) bool {
	for _, ing := range ings {
		for _, t := range ing.Spec.TLS {
			if ing.Namespace == ns && t.SecretName == name {
				return true
			}
		}
	}
	return false
}

// Delete removes an Ingress, and the certificates of the same source it
// named that no other Ingress names.
func (a *API) Delete(ctx context.Context, req *agentapi.DeleteIngressRequest) (*agentapi.DeleteIngressResponse, error) {
	ns := req.GetNamespace()
	if ns == "" {
		ns = "default"
	}
	key := a.c.keys.Ingress(a.c.cluster, ns, req.GetName())
	kv, err := a.c.store.Get(ctx, key)
	if errors.Is(err, kvstore.ErrNotFound) {
		return &agentapi.DeleteIngressResponse{}, nil
	}
	if err != nil {
		return nil, status.Errorf(codes.Unavailable, "read %s: %v", key, err)
	}
	if err := a.c.store.Delete(ctx, key); err != nil {
		return nil, status.Errorf(codes.Unavailable, "delete %s: %v", key, err)
	}
	rec, err := a.c.keys.DecodeIngress(key, kv.Value)
	if err != nil {
		return &agentapi.DeleteIngressResponse{Existed: true}, nil
	}
	ing, err := pingress.FromDocument(rec.Document)
	if err != nil {
		return &agentapi.DeleteIngressResponse{Existed: true}, nil
	}
	others, err := a.c.store.List(ctx, a.c.keys.IngressesPrefix(a.c.cluster))
	if err != nil {
		return &agentapi.DeleteIngressResponse{Existed: true}, nil
	}
	var rest []networkingv1.Ingress
	for _, o := range others {
		if r, err := a.c.keys.DecodeIngress(o.Key, o.Value); err == nil {
			if i, err := pingress.FromDocument(r.Document); err == nil {
				rest = append(rest, i)
			}
		}
	}
	for _, t := range ing.Spec.TLS {
		skey := a.c.keys.IngressSecret(a.c.cluster, ns, t.SecretName)
		if named(rest, ns, t.SecretName) {
			continue
		}
		if kv, err := a.c.store.Get(ctx, skey); err == nil {
			if s, err := a.c.keys.DecodeIngressSecret(skey, kv.Value); err == nil && s.Source == rec.Source {
				a.c.store.DeleteIfValue(ctx, skey, kv.Value)
			}
		}
	}
	return &agentapi.DeleteIngressResponse{Existed: true}, nil
}

// List answers from the last build: where each Ingress is served, its
// routes with the ready backends this node sees, and why one is not
// served.
func (a *API) List(_ context.Context, _ *agentapi.ListIngressesRequest) (*agentapi.ListIngressesResponse, error) {
	c := a.c
	c.mu.Lock()
	all := c.served
	c.mu.Unlock()
	var nodeIPs []netip.Addr
	for _, n := range c.nodes.List() {
		if n.Cluster == c.cluster && len(n.Underlay) > 0 {
			nodeIPs = append(nodeIPs, n.Underlay[0])
		}
	}
	if len(nodeIPs) == 0 {
		nodeIPs = []netip.Addr{c.nodeIP}
	}
	resp := &agentapi.ListIngressesResponse{}
	for _, s := range all {
		sum := &agentapi.IngressSummary{Namespace: s.rec.Namespace, Name: s.rec.Name, Source: s.rec.Source}
		if s.err != nil {
			sum.Error = s.err.Error()
			resp.Ingresses = append(resp.Ingresses, sum)
			continue
		}
		for _, ip := range nodeIPs {
			if c.cfg.HTTPPort != 0 {
				sum.Addresses = append(sum.Addresses, netip.AddrPortFrom(ip, uint16(c.cfg.HTTPPort)).String())
			}
			if c.cfg.HTTPSPort != 0 && len(s.ing.Spec.TLS) > 0 {
				sum.Addresses = append(sum.Addresses, "https://"+netip.AddrPortFrom(ip, uint16(c.cfg.HTTPSPort)).String())
			}
		}
		if d := s.ing.Spec.DefaultBackend; d != nil && d.Service != nil {
			sum.Routes = append(sum.Routes, c.route("", "*", "default", s.ing.Namespace, *d))
		}
		for _, r := range s.ing.Spec.Rules {
			if r.HTTP == nil {
				continue
			}
			for _, p := range r.HTTP.Paths {
				pt := string(networkingv1.PathTypePrefix)
				if p.PathType != nil && *p.PathType == networkingv1.PathTypeExact {
					pt = string(networkingv1.PathTypeExact)
				}
				sum.Routes = append(sum.Routes, c.route(r.Host, p.Path, pt, s.ing.Namespace, p.Backend))
			}
		}
		for _, t := range s.ing.Spec.TLS {
			hosts := strings.Join(t.Hosts, ",")
			if _, err := c.certificate(pingress.TLS{Namespace: s.ing.Namespace, SecretName: t.SecretName}); err != nil {
				hosts += " (" + err.Error() + ")"
			}
			sum.TlsHosts = append(sum.TlsHosts, hosts)
		}
		resp.Ingresses = append(resp.Ingresses, sum)
	}
	return resp, nil
}

func (c *Component) route(host, path, pathType, ns string, b networkingv1.IngressBackend) *agentapi.IngressRoute {
	r := &agentapi.IngressRoute{Host: host, Path: path, PathType: pathType}
	if b.Service == nil {
		return r
	}
	port := b.Service.Port.Name
	if port == "" {
		port = strconv.Itoa(int(b.Service.Port.Number))
	}
	r.Backend = fmt.Sprintf("%s/%s:%s", ns, b.Service.Name, port)
	addrs, err := c.backends.BackendsOf(ns, b.Service.Name, b.Service.Port.Number, b.Service.Port.Name)
	switch {
	case errors.Is(err, services.ErrNoService):
		r.Problem = err.Error() + ": requests get 503"
	case err != nil:
		r.Problem = err.Error()
	case len(addrs) == 0:
		r.Problem = "no ready backend: requests get 503"
	}
	r.ReadyBackends = uint32(len(addrs))
	return r
}

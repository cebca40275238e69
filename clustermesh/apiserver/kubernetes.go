package apiserver

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/weftnet/weft/api/adminapi"
	"github.com/weftnet/weft/k8s"
	"github.com/weftnet/weft/state/records"
)

// startKubernetes builds the Kubernetes source when it is enabled; it
// writes into the cluster store (the served one when embedded).
func (s *Server) startKubernetes() error {
	if !s.cfg.Kubernetes.On() {
		return nil
	}
	kc := s.cfg.kubernetes()
	rc, err := kc.RESTConfig()
	if err != nil {
		return err
	}
	if s.k8s, err = k8s.New(kc, rc, s.source, s.log); err != nil {
		return err
	}
	s.log.Info("Kubernetes source enabled", "host", rc.Host)
	return nil
}

// waitKubernetesSynced blocks until the Kubernetes source (this apiserver
// or another of the cluster) has written its first full list of Services
// into the cluster store, so that no services canary announces a partial
// list. Without the source it returns at once.
func (s *Server) waitKubernetesSynced(ctx context.Context) error {
	if s.k8s == nil {
		return nil
	}
	key := records.NewKeys(s.source.Prefix()).Synced(s.cc.Name, records.KindK8sServices)
	for {
		if _, err := s.source.Get(ctx, key); err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// embeddedServicesCanary writes the services canary of an embedded store
// once the Kubernetes source has synced Services.
func (s *Server) embeddedServicesCanary(ctx context.Context) error {
	if err := s.waitKubernetesSynced(ctx); err != nil {
		return nil // ctx ended
	}
	if err := writeCanary(ctx, s.served.Raw(), records.NewKeys(s.served.Prefix()), s.cc.Name, records.KindServices); err != nil && ctx.Err() == nil {
		return fmt.Errorf("write synced canary %s: %w", records.KindServices, err)
	}
	return nil
}

// canaryKinds are the kinds whose canary an embedded store writes at start.
func (s *Server) canaryKinds() []string {
	kinds := []string{records.KindNodes, records.KindIdentities, records.KindServices, records.KindIPCache}
	if s.cfg.Kubernetes.On() {
		kinds = slices.DeleteFunc(kinds, func(k string) bool { return k == records.KindServices })
	}
	return kinds
}

// KubernetesStatus is the source's status (Enabled false when off).
func (s *Server) KubernetesStatus() k8s.Status {
	if s.k8s == nil {
		return k8s.Status{}
	}
	return s.k8s.Status()
}

func (a *admin) KubernetesStatus(ctx context.Context, _ *adminapi.KubernetesStatusRequest) (*adminapi.KubernetesStatusResponse, error) {
	st := a.s.KubernetesStatus()
	resp := &adminapi.KubernetesStatusResponse{Enabled: st.Enabled, Leader: st.Leader, Holder: st.Holder, LastError: st.LastError}
	if !st.LastErrorTime.IsZero() {
		resp.LastErrorUnix = st.LastErrorTime.Unix()
	}
	for _, kind := range []string{records.KindK8sNamespaces, records.KindK8sPods, records.KindK8sServices, records.KindK8sPolicies} {
		if ks, ok := st.Kinds[kind]; ok {
			resp.Kinds = append(resp.Kinds, &adminapi.KubernetesKind{Kind: kind, Synced: ks.Synced, Objects: uint32(ks.Objects)})
		}
	}
	for _, p := range st.Problems {
		resp.Problems = append(resp.Problems, &adminapi.KubernetesProblem{Kind: p.Kind, Namespace: p.Namespace, Name: p.Name, Reason: p.Reason})
	}
	return resp, nil
}

package clustermesh

import (
	"context"
	"net/netip"
	"slices"

	"github.com/weftnet/weft/clustermesh"
	"github.com/weftnet/weft/services"
	"github.com/weftnet/weft/state/records"
)

func (r *remoteCluster) identityKind() kindHandler {
	keyID := func(key string) (records.ID, bool) {
		id, err := r.keys.ParseIdentityKey(key)
		return id, err == nil
	}
	drop := func(id records.ID) {
		r.mu.Lock()
		_, had := r.ids[id]
		delete(r.ids, id)
		r.mu.Unlock()
		if had {
			r.m.policy.DeleteRemoteIdentity(id)
		}
	}
	return kindHandler{
		upsert: func(ctx context.Context, key string, value []byte) error {
			ident, err := r.keys.DecodeIdentity(key, value)
			if err != nil {
				return err
			}
			if cc := r.config(); ident.ID.IsReserved() || !clustermesh.AcceptIdentity(cc.ID, ident.ID) {
				return rejectf(RejectIdentityRange, "identity %d is outside the range of %s (id %d)", ident.ID, r.name, cc.ID)
			}
			r.mu.Lock()
			r.ids[ident.ID] = ident.Labels
			r.mu.Unlock()
			r.m.policy.UpsertRemoteIdentity(ident.ID, ident.Labels)
			r.m.servicesChanged() // labels select global services' remote backends
			return nil
		},
		remove: func(ctx context.Context, key string) {
			if id, ok := keyID(key); ok {
				drop(id)
			}
		},
		prune: func(ctx context.Context, seen map[string]struct{}) {
			r.mu.Lock()
			var stale []records.ID
			for id := range r.ids {
				if _, ok := seen[r.keys.Identity(id)]; !ok {
					stale = append(stale, id)
				}
			}
			r.mu.Unlock()
			for _, id := range stale {
				drop(id)
			}
		},
	}
}

// serviceKind keeps the remote's service records for global services
// (Mesh.remoteServices); nothing else consumes them yet.
func (r *remoteCluster) serviceKind() kindHandler {
	return kindHandler{
		upsert: func(ctx context.Context, key string, value []byte) error {
			s, err := r.keys.DecodeService(key, value)
			if err != nil {
				return err
			}
			r.mu.Lock()
			r.services[key] = s
			r.mu.Unlock()
			r.m.servicesChanged()
			return nil
		},
		remove: func(ctx context.Context, key string) {
			r.mu.Lock()
			_, had := r.services[key]
			delete(r.services, key)
			r.mu.Unlock()
			if had {
				r.m.servicesChanged()
			}
		},
		prune: func(ctx context.Context, seen map[string]struct{}) {
			r.mu.Lock()
			changed := false
			for key := range r.services {
				if _, ok := seen[key]; !ok {
					delete(r.services, key)
					changed = true
				}
			}
			r.mu.Unlock()
			if changed {
				r.m.servicesChanged()
			}
		},
	}
}

func (r *remoteCluster) serviceList() []records.Service {
	r.mu.Lock()
	defer r.mu.Unlock()
	keys := make([]string, 0, len(r.services))
	for k := range r.services {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	out := make([]records.Service, 0, len(keys))
	for _, k := range keys {
		out = append(out, r.services[k])
	}
	return out
}

// pods are the remote cluster's endpoints as global services select them:
// address, namespace, identity labels and hosting node.
func (r *remoteCluster) pods() []services.Pod {
	r.mu.Lock()
	defer r.mu.Unlock()
	nodeOf := map[netip.Addr]string{}
	for _, n := range r.nodes {
		for _, ip := range n.Underlay {
			nodeOf[ip] = n.Name
		}
	}
	out := make([]services.Pod, 0, len(r.ips))
	for addr, e := range r.ips { // addr: the global address of a global remote's pod
		ls, ok := r.ids[e.Identity]
		if !ok || e.Namespace == "" {
			continue // not a pod, or its identity has not arrived yet
		}
		out = append(out, services.Pod{IP: addr, Namespace: e.Namespace, Labels: ls, HostIP: e.HostIP,
			Node: nodeOf[e.HostIP], Cluster: r.name})
	}
	slices.SortFunc(out, func(a, b services.Pod) int { return a.IP.Compare(b.IP) })
	return out
}

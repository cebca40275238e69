package clustermesh

import (
	"fmt"

	"github.com/weftnet/weft/api/agentapi"
	"github.com/weftnet/weft/state/records"
)

// Accessors of a remote's state, and what the agent's Status reports about it.

func (r *remoteCluster) setErr(msg string) {
	r.mu.Lock()
	r.lastErr = msg
	r.mu.Unlock()
}

func (r *remoteCluster) hasRecord() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.rec != nil
}

func (r *remoteCluster) clusterID() uint32 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.cfg.ID
}

func (r *remoteCluster) status() *agentapi.RemoteCluster {
	r.mu.Lock()
	defer r.mu.Unlock()
	st := &agentapi.RemoteCluster{Name: r.name, Connected: r.connected, Synced: len(r.listed) == len(remoteKinds)+1,
		Nodes: uint32(len(r.nodes)), Endpoints: uint32(len(r.ips)), Error: r.lastErr}
	if r.rejected > 0 {
		note := fmt.Sprintf("rejected %d records outside its prefix or identity range", r.rejected)
		if st.Error != "" {
			note = st.Error + "; " + note
		}
		st.Error = note
	}
	return st
}

func sameRemote(a, b records.Remote) bool {
	if a.Cluster != b.Cluster || a.CA != b.CA || a.ClientRef != b.ClientRef || len(a.Endpoints) != len(b.Endpoints) {
		return false
	}
	for i := range a.Endpoints {
		if a.Endpoints[i] != b.Endpoints[i] {
			return false
		}
	}
	return true
}

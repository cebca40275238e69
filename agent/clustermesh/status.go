package clustermesh

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

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

// status reports the remote; its Error says, with their age, why it is not
// connected or not synced, and how many records it sent that were refused.
// They are the remote's faults: `weft status` shows them as warnings on the
// remote's line, not as the node's health.
// syncedLocked reports whether every kind of the remote was listed; r.mu
// held.
func (r *remoteCluster) syncedLocked() bool { return len(r.listed) == len(remoteKinds)+1 }

func (r *remoteCluster) status() *agentapi.RemoteCluster {
	r.mu.Lock()
	defer r.mu.Unlock()
	synced := r.syncedLocked()
	st := &agentapi.RemoteCluster{Name: r.name, Connected: r.connected, Synced: synced,
		Nodes: uint32(len(r.nodes)), Endpoints: uint32(len(r.ips))}
	if !r.lastSync.IsZero() {
		st.LastSyncNs = r.lastSync.UnixNano()
	}
	var notes []string
	age := "a moment"
	if !r.since.IsZero() {
		age = time.Since(r.since).Round(time.Second).String()
	}
	switch {
	case !r.connected && r.lastErr != "":
		notes = append(notes, fmt.Sprintf("unreachable for %s: %s", age, r.lastErr))
	case !r.connected:
		notes = append(notes, "connecting")
	case !synced:
		notes = append(notes, fmt.Sprintf("connected %s ago, not synced yet", age))
	case r.lastErr != "":
		notes = append(notes, r.lastErr)
	case len(r.nodes) == 0:
		// Synced, but nothing to reach: its agents are all gone, or it
		// is not the cluster it was meant to be.
		notes = append(notes, "connected and synced, but it announces no node")
	}
	if len(r.rejected) > 0 {
		st.Rejected = maps.Clone(r.rejected)
		var total uint64
		var by []string
		for _, reason := range slices.Sorted(maps.Keys(r.rejected)) {
			total += r.rejected[reason]
			by = append(by, fmt.Sprintf("%s %d", reason, r.rejected[reason]))
		}
		notes = append(notes, fmt.Sprintf("rejected %d records (%s)", total, strings.Join(by, ", ")))
	}
	st.Error = strings.Join(notes, "; ")
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

package clustermesh

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"strings"

	"github.com/weftnet/weft/clustermesh"
	"github.com/weftnet/weft/datapath/bpf"
	"github.com/weftnet/weft/state/ipcache"
	"github.com/weftnet/weft/state/records"
)

// remoteState is what the agent keeps on disk about a remote cluster, so a
// restart keeps its routes and ipcache entries until the remote is listed
// again: <state-dir>/clustermesh/<cluster>.json. Pod entries are not
// stored: they are found in the pinned BPF ipcache by their identity's
// cluster id.
type remoteState struct {
	Config records.ClusterConfig   `json:"config"`
	Nodes  map[string]records.Node `json:"nodes"` // by remote store key
}

func (r *remoteCluster) statePath() string { return filepath.Join(r.m.cfg.StateDir, r.name+".json") }

// persist writes the remote's config and nodes (small; nodes change rarely).
func (r *remoteCluster) persist() {
	r.mu.Lock()
	st := remoteState{Config: r.cfg, Nodes: make(map[string]records.Node, len(r.nodes))}
	for k, n := range r.nodes {
		st.Nodes[k] = n
	}
	r.mu.Unlock()
	if st.Config.ID == 0 {
		return
	}
	raw, err := json.Marshal(st)
	if err == nil {
		if err = os.MkdirAll(r.m.cfg.StateDir, 0o700); err == nil {
			err = clustermesh.WriteFile(r.statePath(), raw, 0o600)
		}
	}
	if err != nil {
		r.log.Warn("save remote cluster state", "err", err)
	}
}

// persistListed persists a change of one node once the remote's nodes have
// been listed; the first listing persists once, at its end (writing the
// whole file for each node of a large remote made the listing quadratic).
func (r *remoteCluster) persistListed() {
	r.mu.Lock()
	listed := r.listed[records.KindNodes]
	r.mu.Unlock()
	if listed {
		r.persist()
	}
}

// Restore brings back, before anything is pruned, what the last run knew
// about every remote: nodes from the state files, pod entries from the
// pinned BPF ipcache. They stay until the remote is listed again, or are
// drained if its record is gone.
func (m *Mesh) Restore(ctx context.Context) error {
	files, err := os.ReadDir(m.cfg.StateDir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read clustermesh state: %w", err)
	}
	byID := map[uint32]*remoteCluster{}
	for _, f := range files {
		name, ok := strings.CutSuffix(f.Name(), ".json")
		if !ok || records.ValidateClusterName(name) != nil {
			continue
		}
		raw, err := os.ReadFile(filepath.Join(m.cfg.StateDir, f.Name()))
		var st remoteState
		if err == nil {
			err = json.Unmarshal(raw, &st)
		}
		if err != nil || st.Config.Name != name {
			m.log.Warn("ignore unreadable remote cluster state", "file", f.Name(), "err", err)
			continue
		}
		r := newRemoteCluster(m, name)
		r.cfg = st.Config
		for key, n := range st.Nodes {
			r.nodes[key] = n
			m.nodes.Upsert(ctx, key, n)
		}
		m.remotes[name] = r
		byID[st.Config.ID] = r
	}
	if len(byID) == 0 {
		return nil
	}
	var (
		k bpf.IPCacheKey
		v bpf.IPCacheValue
	)
	it := m.dp.Objects().WeftIpcache.Iterate()
	restored := 0
	for it.Next(&k, &v) {
		p := k.Prefix()
		r := byID[records.ID(v.Identity).ClusterID()]
		if r == nil || !p.IsSingleIP() || records.ID(v.Identity).IsReserved() {
			continue
		}
		e := records.IPCacheEntry{IP: p.Addr(), Identity: records.ID(v.Identity)}
		if v.TunnelFamily != 0 {
			e.HostIP = bpf.AddrFrom16(v.TunnelFamily, v.TunnelEndpoint)
		}
		r.ips[e.IP] = e
		m.ipcache.OnChange(ipcache.Change{Type: ipcache.Upsert, Entry: e})
		restored++
	}
	if err := it.Err(); err != nil {
		return fmt.Errorf("read pinned ipcache: %w", err)
	}
	m.log.Info("restored remote clusters' state", "remotes", len(byID), "endpoints", restored)
	return nil
}

// drain removes everything learnt from the remote, and its state file.
func (r *remoteCluster) drain(ctx context.Context) {
	r.mu.Lock()
	nodes, ips, ids := r.nodes, r.ips, r.ids
	r.nodes, r.ips, r.ids = map[string]records.Node{}, map[netip.Addr]records.IPCacheEntry{}, map[records.ID]records.Labels{}
	hadServices := len(r.services) > 0
	r.services = map[string]records.Service{}
	r.mu.Unlock()
	for ip := range ips {
		r.m.ipcache.OnChange(ipcache.Change{Type: ipcache.Delete, Entry: records.IPCacheEntry{IP: ip}})
	}
	for key := range nodes {
		r.m.nodes.Remove(ctx, key)
	}
	for id := range ids {
		r.m.policy.DeleteRemoteIdentity(id)
	}
	if hadServices {
		r.m.servicesChanged()
	}
	if err := os.Remove(r.statePath()); err != nil && !errors.Is(err, fs.ErrNotExist) {
		r.log.Warn("remove remote cluster state", "err", err)
	}
	if err := os.RemoveAll(filepath.Join(r.m.cfg.StateDir, r.name)); err != nil {
		r.log.Warn("remove remote cluster credentials", "err", err)
	}
}

package nodes

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"

	"github.com/weftnet/weft/kvstore"
	"github.com/weftnet/weft/state/podcidr"
	"github.com/weftnet/weft/state/records"
	"github.com/weftnet/weft/state/watchstore"
)

// Owner is the agent's sync store (syncstore.Store): it keeps owned keys
// written under the current lease.
type Owner interface {
	Upsert(key string, value []byte)
	Delete(key string)
}

// Registry publishes this agent's node record.
type Registry struct {
	owner Owner
	keys  records.Keys
}

// NewRegistry publishes under prefix through owner.
func NewRegistry(owner Owner, prefix string) *Registry {
	return &Registry{owner: owner, keys: records.NewKeys(prefix)}
}

// Register publishes (or replaces) n, lease-bound.
func (r *Registry) Register(n records.Node) error {
	key := r.keys.Node(n.Cluster, n.Name)
	val, err := records.Encode(key, &n)
	if err != nil {
		return fmt.Errorf("register node: %w", err)
	}
	r.owner.Upsert(key, val)
	return nil
}

// Deregister withdraws the record (a clean shutdown); the CIDR stays.
func (r *Registry) Deregister(cluster, node string) {
	r.owner.Delete(r.keys.Node(cluster, node))
}

// Delete removes a node for good: its record and its pod CIDRs.
func Delete(ctx context.Context, client kvstore.Client, cidrs *podcidr.Allocator, cluster, node string) ([]netip.Prefix, error) {
	key := records.NewKeys(client.Prefix()).Node(cluster, node)
	if err := client.Delete(ctx, key); err != nil {
		return nil, fmt.Errorf("delete node %s: %w", key, err)
	}
	freed, err := cidrs.Free(ctx, node)
	if err != nil {
		return freed, fmt.Errorf("delete node %s: %w", node, err)
	}
	return freed, nil
}

// Watcher mirrors the node records of one cluster.
type Watcher = watchstore.Watcher[records.Node]

// Change is one change of the node view.
type Change = watchstore.Change[records.Node]

// NewWatcher watches cluster's nodes through client; onChange (may be nil)
// sees every change in order.
func NewWatcher(client kvstore.Client, cluster string, onChange func(Change), log *slog.Logger) (*Watcher, error) {
	if err := records.ValidateClusterName(cluster); err != nil {
		return nil, fmt.Errorf("node watcher: %w", err)
	}
	keys := records.NewKeys(client.Prefix())
	return watchstore.New(client, watchstore.Config[records.Node]{
		Prefix:   keys.NodesPrefix(cluster),
		Decode:   keys.DecodeNode,
		Equal:    equal,
		OnChange: onChange,
	}, log.With("cluster", cluster)), nil
}

func equal(a, b records.Node) bool {
	return a.Name == b.Name && a.Cluster == b.Cluster && a.ClusterID == b.ClusterID && a.HealthIP == b.HealthIP &&
		a.BootID == b.BootID && slices.Equal(a.Underlay, b.Underlay) && slices.Equal(a.PodCIDRs, b.PodCIDRs)
}

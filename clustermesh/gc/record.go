package gc

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"time"

	"github.com/weftnet/weft/kvstore"
	"github.com/weftnet/weft/state/records"
)

const recordDir = "gc/v1/"

// Key is gc/v1/<cluster> under prefix.
func Key(prefix, cluster string) string { return prefix + recordDir + cluster }

// Record is the value of Key: the cluster's last collection. (v1)
type Record struct {
	Version int       `json:"v"`
	Cluster string    `json:"cluster"`
	By      string    `json:"by"`   // the runner of the last pass
	Time    time.Time `json:"time"` // when the last pass ended
	Error   string    `json:"error,omitempty"`
	// Freed is what was last freed: the identities of the last pass that
	// freed identities, the CIDRs of the last pass that freed CIDRs, and
	// when the latest of them ran.
	Freed *Freed `json:"freed,omitempty"`
}

// Freed is what one pass reclaimed.
type Freed struct {
	Time       time.Time                 `json:"time"`
	Identities []records.ID              `json:"identities,omitempty"`
	CIDRs      map[string][]netip.Prefix `json:"cidrs,omitempty"` // node → pod CIDRs
}

// Empty reports whether nothing was freed.
func (f *Freed) Empty() bool { return f == nil || len(f.Identities) == 0 && len(f.CIDRs) == 0 }

// Last reads cluster's last collection; kvstore.ErrNotFound when none ran.
func Last(ctx context.Context, r kvstore.Reader, prefix, cluster string) (Record, error) {
	kv, err := r.Get(ctx, Key(prefix, cluster))
	if err != nil {
		return Record{}, err
	}
	var rec Record
	if err := json.Unmarshal(kv.Value, &rec); err != nil {
		return Record{}, fmt.Errorf("decode %s: %w", kv.Key, err)
	}
	if rec.Version != 1 || rec.Cluster != cluster {
		return Record{}, fmt.Errorf("decode %s: version %d of cluster %q, accepted is version 1 of %q", kv.Key, rec.Version, rec.Cluster, cluster)
	}
	return rec, nil
}

package identity

import (
	"errors"
	"fmt"
	"time"

	"github.com/weftnet/weft/state/records"
)

// ErrExhausted is returned when every identity of the cluster's range is taken.
var ErrExhausted = errors.New("identity range exhausted")

// Config of an Allocator.
type Config struct {
	Cluster   string // cluster name, for logs
	ClusterID uint32 // 1..255: identities are ClusterID<<16 | n
	Node      string // node name in reference keys
	// MinLocal..MaxLocal is the range of n (default 256..65535). A smaller
	// range only makes sense in tests.
	MinLocal, MaxLocal uint32
}

// DefaultConfig has the full range; cluster and node must still be set.
func DefaultConfig() Config {
	return Config{MinLocal: records.MinClusterLocal, MaxLocal: records.MaxClusterLocal}
}

// Validate checks the cluster id, node name and range.
func (c *Config) Validate() error {
	if err := records.ValidateClusterID(c.ClusterID); err != nil {
		return fmt.Errorf("identity allocator: %w", err)
	}
	if err := records.ValidateNodeName(c.Node); err != nil {
		return fmt.Errorf("identity allocator: %w", err)
	}
	if c.MinLocal < records.MinClusterLocal || c.MaxLocal > records.MaxClusterLocal || c.MinLocal > c.MaxLocal {
		return fmt.Errorf("identity allocator range %d..%d: accepted is a range within %d..%d", c.MinLocal, c.MaxLocal, records.MinClusterLocal, records.MaxClusterLocal)
	}
	return nil
}

// CollectorConfig of a Collector.
type CollectorConfig struct {
	ClusterID uint32
	// Grace is how long a master key must stay unreferenced before it is deleted.
	Grace time.Duration
	// Interval between collection passes.
	Interval time.Duration
}

// DefaultCollectorConfig waits 5 minutes before collecting, checking every 30 s.
func DefaultCollectorConfig() CollectorConfig {
	return CollectorConfig{Grace: 5 * time.Minute, Interval: 30 * time.Second}
}

// Validate checks the cluster id and durations.
func (c *CollectorConfig) Validate() error {
	if err := records.ValidateClusterID(c.ClusterID); err != nil {
		return fmt.Errorf("identity collector: %w", err)
	}
	if c.Grace <= 0 || c.Interval <= 0 {
		return fmt.Errorf("identity collector: grace %v and interval %v must be positive", c.Grace, c.Interval)
	}
	return nil
}

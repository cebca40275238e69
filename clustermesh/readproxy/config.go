package readproxy

import (
	"errors"
	"fmt"
	"time"
)

// Config are the per-remote limits of the front.
type Config struct {
	// MaxConnections is how many connections one remote cluster may hold
	// (each of its agents opens one).
	MaxConnections int
	// MaxWatches is how many watches one remote cluster may hold at once
	// (each of its agents holds four).
	MaxWatches int
	// RequestRate (per second) and RequestBurst bound one remote
	// cluster's calls and watch creations.
	RequestRate  float64
	RequestBurst int
	// RefreshInterval is how often the list of readers is re-read.
	RefreshInterval time.Duration
}

// DefaultConfig suits remote clusters of up to a few hundred nodes.
func DefaultConfig() Config {
	return Config{MaxConnections: 512, MaxWatches: 2048, RequestRate: 500, RequestBurst: 2000, RefreshInterval: 2 * time.Second}
}

// Validate says which limit is unusable and what is accepted.
func (c Config) Validate() error {
	var errs []error
	if c.MaxConnections < 1 {
		errs = append(errs, fmt.Errorf("remote connection limit %d: must be at least 1", c.MaxConnections))
	}
	if c.MaxWatches < 1 {
		errs = append(errs, fmt.Errorf("remote watch limit %d: must be at least 1", c.MaxWatches))
	}
	if c.RequestRate <= 0 {
		errs = append(errs, fmt.Errorf("remote request rate %v: must be positive (requests per second)", c.RequestRate))
	}
	if c.RequestBurst < 1 {
		errs = append(errs, fmt.Errorf("remote request burst %d: must be at least 1", c.RequestBurst))
	}
	if c.RefreshInterval <= 0 {
		errs = append(errs, fmt.Errorf("readers refresh interval %v: must be positive", c.RefreshInterval))
	}
	return errors.Join(errs...)
}

package gc

import (
	"errors"
	"fmt"
	"time"
)

// Config says how often and how patiently to collect.
type Config struct {
	// Runner names who collects, for the record: "apiserver <host>" or
	// "agent <node>".
	Runner string
	// Interval between passes while holding the lock.
	Interval time.Duration
	// IdentityGrace is how long an identity stays unreferenced before its
	// master key is deleted; NodeGrace how long a pod CIDR outlives its
	// node's record before it is freed. A new collector (after a restart or
	// a change of holder) starts both clocks afresh: it never frees early.
	IdentityGrace time.Duration
	NodeGrace     time.Duration
}

// DefaultConfig collects every minute with the apiserver's usual graces.
func DefaultConfig() Config {
	return Config{Interval: time.Minute, IdentityGrace: 15 * time.Minute, NodeGrace: time.Hour}
}

// Validate says which setting is unusable.
func (c Config) Validate() error {
	var errs []error
	if c.Runner == "" {
		errs = append(errs, errors.New("gc: the runner's name is empty"))
	}
	for name, d := range map[string]time.Duration{"gc interval": c.Interval, "identity gc grace": c.IdentityGrace, "node gc grace": c.NodeGrace} {
		if d <= 0 {
			errs = append(errs, fmt.Errorf("%s %v: must be positive", name, d))
		}
	}
	return errors.Join(errs...)
}

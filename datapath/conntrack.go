package datapath

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/weftnet/weft/datapath/bpf"
)

// PruneConntrack deletes conntrack entries idle for longer than maxIdle and
// returns how many it deleted. Entries record their last packet at most
// once a second, so maxIdle below a few seconds cuts live flows. Without
// it, entries leave only by LRU eviction when the table is full.
func (d *Datapath) PruneConntrack(ctx context.Context, maxIdle time.Duration) (int, error) {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil { // bpf_ktime_get_ns
		return 0, fmt.Errorf("read monotonic clock: %w", err)
	}
	now := uint64(ts.Nano())
	var (
		key   bpf.CTKey
		entry bpf.CTEntry
		stale []bpf.CTKey
	)
	it := d.objs.WeftCt.Iterate()
	for it.Next(&key, &entry) {
		if now > entry.LastSeen && time.Duration(now-entry.LastSeen) > maxIdle {
			stale = append(stale, key)
		}
	}
	if err := it.Err(); err != nil {
		return 0, fmt.Errorf("iterate conntrack: %w", err)
	}
	deleted := 0
	for _, k := range stale {
		if err := ctx.Err(); err != nil {
			return deleted, err
		}
		err := d.objs.WeftCt.Delete(k)
		if err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			return deleted, fmt.Errorf("delete conntrack entry: %w", err)
		}
		if err == nil {
			deleted++
		}
	}
	return deleted, nil
}

// Run collects idle conntrack entries every ConntrackGCInterval until ctx
// ends; it returns ctx's error. Everything else the datapath does happens
// in the calls that ask for it.
func (d *Datapath) Run(ctx context.Context) error {
	t := time.NewTicker(d.cfg.ConntrackGCInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
			n, err := d.PruneConntrack(ctx, d.cfg.ConntrackMaxIdle)
			if err != nil && ctx.Err() == nil {
				d.log.Warn("conntrack gc failed", "error", err)
			} else if n > 0 {
				d.log.Debug("conntrack gc", "deleted", n)
			}
		}
	}
}

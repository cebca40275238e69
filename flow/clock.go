package flow

import (
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Clock turns the kernel's monotonic timestamps (bpf_ktime_get_ns,
// CLOCK_MONOTONIC) into wall-clock time. It measures the offset between
// the two clocks and measures it again every recalibrate, so a wall clock
// stepped by NTP is followed.
type Clock struct {
	mono        func() time.Duration
	now         func() time.Time
	recalibrate time.Duration

	mu     sync.Mutex
	offset time.Duration // wall (Unix ns) - monotonic
	at     time.Duration // monotonic time of the last measurement
	valid  bool
}

// NewClock returns a clock reading the system's clocks. It measures again
// every second: NTP slews the wall clock by up to 500 ppm, so a stale
// offset errs by at most 0.5 ms (10 s would allow 5 ms, enough to put a
// flow before a reader's --since taken just before it).
func NewClock() *Clock {
	return &Clock{mono: monotonic, now: time.Now, recalibrate: time.Second}
}

func monotonic() time.Duration {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return 0
	}
	return time.Duration(ts.Nano())
}

// Wall returns the wall-clock time of a monotonic timestamp.
func (c *Clock) Wall(mono time.Duration) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.valid || mono-c.at > c.recalibrate || mono < c.at-c.recalibrate {
		// Read the wall clock between two monotonic reads and take the
		// middle: the error is half the gap.
		m1 := c.mono()
		w := c.now()
		m2 := c.mono()
		mid := m1 + (m2-m1)/2
		c.offset = time.Duration(w.UnixNano()) - mid
		c.at, c.valid = mid, true
	}
	return time.Unix(0, int64(mono+c.offset))
}

package kvstore

import (
	"context"
	"time"
)

// Backoff is a capped exponential backoff for reconnect loops.
type Backoff struct {
	min, max, cur time.Duration
}

// NewBackoff starts at min and doubles up to max.
func NewBackoff(min, max time.Duration) *Backoff { return &Backoff{min: min, max: max, cur: min} }

// Wait sleeps the current delay (or until ctx ends) and doubles it.
func (b *Backoff) Wait(ctx context.Context) {
	t := time.NewTimer(b.cur)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
	b.cur = min(2*b.cur, b.max)
}

// Reset returns to the initial delay after progress.
func (b *Backoff) Reset() { b.cur = b.min }

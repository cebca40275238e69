package kvstore

import (
	"context"
	"time"

	"github.com/cenkalti/backoff/v4"
)

// Backoff is the capped exponential backoff with jitter of Weft's reconnect
// and retry loops (github.com/cenkalti/backoff), with a Wait that ends with
// ctx.
type Backoff struct {
	b *backoff.ExponentialBackOff
}

// NewBackoff starts around min and doubles up to max, each delay randomised
// by ±20% so that many clients do not retry in step.
func NewBackoff(min, max time.Duration) *Backoff {
	return &Backoff{b: backoff.NewExponentialBackOff(
		backoff.WithInitialInterval(min), backoff.WithMaxInterval(max), backoff.WithMultiplier(2),
		backoff.WithRandomizationFactor(0.2), backoff.WithMaxElapsedTime(0))}
}

// Next returns the next delay.
func (b *Backoff) Next() time.Duration { return b.b.NextBackOff() }

// Wait sleeps the next delay, or until ctx ends.
func (b *Backoff) Wait(ctx context.Context) {
	t := time.NewTimer(b.Next())
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// Reset returns to the initial delay after progress.
func (b *Backoff) Reset() { b.b.Reset() }

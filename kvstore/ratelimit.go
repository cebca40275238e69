package kvstore

import (
	"context"
	"fmt"
	"time"

	"golang.org/x/time/rate"
)

// RateLimit caps requests per client. A freshly started agent lists and
// publishes everything at once, so it gets a higher bootstrap rate for a
// while before the steady rate applies.
type RateLimit struct {
	QPS             float64 // steady requests per second; 0 disables limiting
	Burst           int
	BootstrapQPS    float64
	BootstrapPeriod time.Duration
}

// DefaultRateLimit suits one agent: steady 200/s, 5,000/s for the first 30 s.
func DefaultRateLimit() RateLimit {
	return RateLimit{QPS: 200, Burst: 400, BootstrapQPS: 5000, BootstrapPeriod: 30 * time.Second}
}

func (r RateLimit) validate() error {
	if r.QPS < 0 || r.BootstrapQPS < 0 || r.Burst < 0 || r.BootstrapPeriod < 0 {
		return fmt.Errorf("kvstore rate limit %+v: values must not be negative", r)
	}
	if r.QPS > 0 && r.Burst == 0 {
		return fmt.Errorf("kvstore rate limit: burst must be at least 1 when qps is %v", r.QPS)
	}
	return nil
}

// Limiter applies a RateLimit, switching from the bootstrap to the steady rate.
type Limiter struct {
	lim       *rate.Limiter
	steady    rate.Limit
	burst     int
	bootstrap time.Time // end of the bootstrap period
}

// NewLimiter starts the bootstrap period now.
func NewLimiter(r RateLimit) *Limiter {
	if r.QPS == 0 {
		return &Limiter{}
	}
	l := &Limiter{steady: rate.Limit(r.QPS), burst: r.Burst}
	if r.BootstrapQPS > r.QPS && r.BootstrapPeriod > 0 {
		l.lim = rate.NewLimiter(rate.Limit(r.BootstrapQPS), max(r.Burst, int(r.BootstrapQPS)))
		l.bootstrap = time.Now().Add(r.BootstrapPeriod)
	} else {
		l.lim = rate.NewLimiter(l.steady, r.Burst)
	}
	return l
}

// Wait blocks until one request may be sent or ctx ends.
func (l *Limiter) Wait(ctx context.Context) error {
	if l.lim == nil {
		return nil
	}
	if !l.bootstrap.IsZero() && time.Now().After(l.bootstrap) && l.lim.Limit() != l.steady {
		l.lim.SetLimit(l.steady)
		l.lim.SetBurst(l.burst)
	}
	if err := l.lim.Wait(ctx); err != nil {
		return fmt.Errorf("rate limit: %w", err)
	}
	return nil
}

package syncstore

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/weftnet/weft/kvstore"
)

// Config of a Store.
type Config struct {
	// Workers write keys in parallel.
	Workers int
	// QPS and Burst limit this store's writes (QPS 0: unlimited).
	QPS   float64
	Burst int
	// MinBackoff..MaxBackoff is the retry delay of a failed write.
	MinBackoff, MaxBackoff time.Duration
}

// DefaultConfig writes with 4 workers at up to 500 writes/s.
func DefaultConfig() Config {
	return Config{Workers: 4, QPS: 500, Burst: 100, MinBackoff: 50 * time.Millisecond, MaxBackoff: 10 * time.Second}
}

// Validate checks the numbers.
func (c *Config) Validate() error {
	if c.Workers < 1 || c.Workers > 64 {
		return fmt.Errorf("sync store workers %d: accepted is 1 to 64", c.Workers)
	}
	if c.QPS < 0 || (c.QPS > 0 && c.Burst < 1) {
		return fmt.Errorf("sync store rate %v/s burst %d: rate must not be negative, burst at least 1", c.QPS, c.Burst)
	}
	if c.MinBackoff <= 0 || c.MaxBackoff < c.MinBackoff {
		return fmt.Errorf("sync store backoff %v..%v: must be positive and ordered", c.MinBackoff, c.MaxBackoff)
	}
	return nil
}

// Store owns a set of leased keys. Safe for concurrent use.
type Store struct {
	client kvstore.Client
	cfg    Config
	log    *slog.Logger
	lim    *rate.Limiter
	lost   <-chan struct{} // the lease-loss channel current when New ran

	mu       sync.Mutex
	desired  map[string][]byte // owned keys and values
	pending  map[string]bool   // keys whose store state may differ
	inflight map[string]bool
	markers  map[string]bool // synced markers: written after everything else
	wake     chan struct{}
	idle     chan struct{} // closed while nothing is pending
}

// New returns a store writing through client.
func New(client kvstore.Client, cfg Config, log *slog.Logger) (*Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Store{
		client: client, cfg: cfg, log: log.With("component", "syncstore"), lost: client.LeaseLost(),
		lim:     rate.NewLimiter(rate.Inf, 0),
		desired: map[string][]byte{}, pending: map[string]bool{}, inflight: map[string]bool{},
		markers: map[string]bool{}, wake: make(chan struct{}, 1), idle: make(chan struct{}),
	}
	if cfg.QPS > 0 {
		s.lim = rate.NewLimiter(rate.Limit(cfg.QPS), cfg.Burst)
	}
	close(s.idle)
	return s, nil
}

// Upsert makes key owned with value; it is written in the background.
func (s *Store) Upsert(key string, value []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if old, ok := s.desired[key]; ok && bytes.Equal(old, value) {
		return
	}
	s.desired[key] = bytes.Clone(value)
	s.markLocked(key)
}

// Delete drops key from the owned set and deletes it from the store.
func (s *Store) Delete(key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.desired[key]; !ok {
		return
	}
	delete(s.desired, key)
	s.markLocked(key)
}

// MarkSynced writes the leased marker key (value: the time) once every key
// desired now has been written, and keeps it owned.
func (s *Store) MarkSynced(key string, value []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.markers[key] = true
	s.desired[key] = bytes.Clone(value)
	s.markLocked(key)
}

// Len is the number of owned keys.
func (s *Store) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.desired)
}

// WaitSynced blocks until every desired change has reached the store.
func (s *Store) WaitSynced(ctx context.Context) error {
	for {
		s.mu.Lock()
		idle := s.idle
		s.mu.Unlock()
		select {
		case <-idle:
			s.mu.Lock()
			done := len(s.pending) == 0 && len(s.inflight) == 0
			s.mu.Unlock()
			if done {
				return nil
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// markLocked queues key and wakes a worker (s.mu held).
func (s *Store) markLocked(key string) {
	if len(s.pending) == 0 && len(s.inflight) == 0 {
		s.idle = make(chan struct{})
	}
	s.pending[key] = true
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

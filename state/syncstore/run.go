package syncstore

import (
	"context"

	"golang.org/x/sync/errgroup"

	"github.com/weftnet/weft/kvstore"
)

// Run writes pending keys until ctx ends and re-creates every owned key
// after the lease is lost.
func (s *Store) Run(ctx context.Context) error {
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		lost := s.lost
		for {
			select {
			case <-lost:
				lost = s.client.LeaseLost() // before re-marking: a loss meanwhile is not missed
				s.mu.Lock()
				s.log.Info("lease lost: re-creating owned keys", "count", len(s.desired))
				for key := range s.desired {
					s.markLocked(key)
				}
				s.mu.Unlock()
			case <-ctx.Done():
				return nil
			}
		}
	})
	for range s.cfg.Workers {
		g.Go(func() error { s.work(ctx); return nil })
	}
	return g.Wait()
}

// work takes pending keys one at a time and writes them.
func (s *Store) work(ctx context.Context) {
	bo := kvstore.NewBackoff(s.cfg.MinBackoff, s.cfg.MaxBackoff)
	for ctx.Err() == nil {
		key, value, owned, ok := s.next()
		if !ok {
			select {
			case <-s.wake:
			case <-ctx.Done():
				return
			}
			continue
		}
		err := s.lim.Wait(ctx)
		if err == nil {
			if owned {
				_, err = s.client.UpdateIfDifferent(ctx, key, value, kvstore.Leased())
			} else {
				err = s.client.Delete(ctx, key)
			}
		}
		s.done(key, err)
		if err != nil {
			if ctx.Err() == nil {
				s.log.Warn("sync key to store", "key", key, "err", err)
			}
			bo.Wait(ctx)
			continue
		}
		bo.Reset()
	}
}

// next pops a pending key that no other worker is writing.
func (s *Store) next() (key string, value []byte, owned, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k := range s.pending {
		if s.inflight[k] {
			continue
		}
		if s.markers[k] && s.othersWaiting() {
			continue
		}
		delete(s.pending, k)
		s.inflight[k] = true
		v, owned := s.desired[k]
		if len(s.pending) > 0 {
			select { // let another worker take the next key
			case s.wake <- struct{}{}:
			default:
			}
		}
		return k, v, owned, true
	}
	return "", nil, false, false
}

// othersWaiting reports whether a key other than a marker is still pending
// or in flight, so markers must wait (s.mu held).
func (s *Store) othersWaiting() bool {
	for k := range s.pending {
		if !s.markers[k] {
			return true
		}
	}
	for k := range s.inflight {
		if !s.markers[k] {
			return true
		}
	}
	return false
}

// done records the outcome of writing key.
func (s *Store) done(key string, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.inflight, key)
	if err != nil {
		s.pending[key] = true
	}
	if len(s.pending) == 0 && len(s.inflight) == 0 {
		close(s.idle)
		return
	}
	if len(s.pending) > 0 {
		select {
		case s.wake <- struct{}{}:
		default:
		}
	}
}

package kvstore

import (
	"context"
	"sync"
)

// KeyedMutex is a process-local mutex per key that honours ctx. Backends take
// it before a distributed lock: goroutines of one client share one
// lease/session, and the store cannot tell them apart.
type KeyedMutex struct {
	mu    sync.Mutex
	slots map[string]*slot
}

type slot struct {
	ch   chan struct{} // holds one token while locked
	refs int
}

// Lock blocks until key is free or ctx ends; the returned func unlocks.
func (m *KeyedMutex) Lock(ctx context.Context, key string) (func(), error) {
	m.mu.Lock()
	if m.slots == nil {
		m.slots = map[string]*slot{}
	}
	s := m.slots[key]
	if s == nil {
		s = &slot{ch: make(chan struct{}, 1)}
		m.slots[key] = s
	}
	s.refs++
	m.mu.Unlock()

	select {
	case s.ch <- struct{}{}:
		var once sync.Once
		return func() { once.Do(func() { <-s.ch; m.release(key, s) }) }, nil
	case <-ctx.Done():
		m.release(key, s)
		return nil, ctx.Err()
	}
}

func (m *KeyedMutex) release(key string, s *slot) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s.refs--
	if s.refs == 0 {
		delete(m.slots, key)
	}
}

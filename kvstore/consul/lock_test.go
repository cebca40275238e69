package consul_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/weftnet/weft/kvstore"
)

// TestLockGoroutinesOfOneClient: goroutines sharing a client (and so a
// session) still exclude each other.
func TestLockGoroutinesOfOneClient(t *testing.T) {
	s := startAgent(t, "")
	ctx := ctx(t)
	c := open(t, s)
	var inside, overlaps atomic.Int32
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 5 {
				l, err := c.Lock(ctx, "counter")
				if err != nil {
					t.Error(err)
					return
				}
				if inside.Add(1) > 1 {
					overlaps.Add(1)
				}
				// A read-modify-write guarded by the lock.
				kv, err := c.Get(ctx, "weft/counter")
				n := 0
				if err == nil {
					n = int(kv.Value[0])
				}
				if _, err := c.Update(ctx, "weft/counter", []byte{byte(n + 1)}, kvstore.Guarded(l)); err != nil {
					t.Error(err)
				}
				inside.Add(-1)
				if err := l.Unlock(ctx); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	if overlaps.Load() != 0 {
		t.Fatalf("%d overlapping holders", overlaps.Load())
	}
	kv, err := c.Get(ctx, "weft/counter")
	if err != nil || kv.Value[0] != 20 {
		t.Fatalf("counter %v (%v), want 20 increments", kv.Value, err)
	}
}

// TestLockWaitsForOtherClient: a second client blocks until the holder
// unlocks, and gives up when its ctx ends.
func TestLockWaitsForOtherClient(t *testing.T) {
	s := startAgent(t, "")
	ctx := ctx(t)
	a, b := open(t, s), open(t, s)
	la, err := a.Lock(ctx, "l")
	if err != nil {
		t.Fatal(err)
	}

	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	if _, err := b.Lock(short, "l"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("lock held elsewhere with short ctx: %v, want DeadlineExceeded", err)
	}
	if _, err := b.Update(ctx, "weft/x", []byte("1"), kvstore.Guarded(la)); err == nil {
		t.Fatal("b wrote guarded by a's lock")
	}

	got := make(chan kvstore.Lock, 1)
	go func() {
		l, err := b.Lock(ctx, "l")
		if err != nil {
			t.Error(err)
		}
		got <- l
	}()
	select {
	case <-got:
		t.Fatal("b took the lock while a held it")
	case <-time.After(200 * time.Millisecond):
	}
	if err := la.Unlock(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case lb := <-got:
		if _, err := a.Update(ctx, "weft/x", []byte("1"), kvstore.Guarded(la)); !errors.Is(err, kvstore.ErrLockLost) {
			t.Fatalf("write guarded by unlocked lock: %v, want ErrLockLost", err)
		}
		if _, err := b.Update(ctx, "weft/x", []byte("1"), kvstore.Guarded(lb)); err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("b did not get the lock after a unlocked")
	}
}

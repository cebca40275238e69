package kvstoretest

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/weftnet/weft/kvstore"
)

// testLockExclusive: contenders in several clients (and several goroutines
// per client) never hold one lock at once. Each holder does an unguarded
// read-modify-write of a counter that only the lock protects, so an overlap
// also shows up as a lost increment in the store.
func testLockExclusive(t *testing.T, s Server) {
	const clients, perClient, rounds = 3, 2, 5
	p := prefixFor(t, s)
	counter := p + "counter"
	ctx := ctxFor(t)
	mustUpdate(t, s.NewClient(t), counter, "0")
	var inside, overlaps atomic.Int32
	var wg sync.WaitGroup
	errs := make(chan error, clients*perClient)
	for range clients {
		c := s.NewClient(t)
		for range perClient {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range rounds {
					if err := lockedIncrement(ctx, c, p+"mutex", counter, &inside, &overlaps); err != nil {
						errs <- err
						return
					}
				}
			}()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if n := overlaps.Load(); n > 0 {
		t.Fatalf("%d times two contenders held the lock at once", n)
	}
	got, _ := strconv.Atoi(string(mustGet(t, s.NewClient(t), counter).Value))
	if want := clients * perClient * rounds; got != want {
		t.Fatalf("counter = %d after %d locked increments: updates lost under the lock", got, want)
	}
}

func lockedIncrement(ctx context.Context, c kvstore.Client, name, counter string, inside, overlaps *atomic.Int32) error {
	l, err := c.Lock(ctx, name)
	if err != nil {
		return err
	}
	if inside.Add(1) != 1 {
		overlaps.Add(1)
	}
	kv, err := c.Get(ctx, counter)
	if err == nil {
		v, _ := strconv.Atoi(string(kv.Value))
		_, err = c.Update(ctx, counter, []byte(strconv.Itoa(v+1)), kvstore.Guarded(l))
	}
	inside.Add(-1)
	if uerr := l.Unlock(ctx); err == nil {
		err = uerr
	}
	return err
}

func testLockCancel(t *testing.T, s Server) {
	name := prefixFor(t, s) + "mutex"
	a, b := s.NewClient(t), s.NewClient(t)
	held, err := a.Lock(ctxFor(t), name)
	if err != nil {
		t.Fatalf("lock: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if l, err := b.Lock(ctx, name); !errors.Is(err, context.DeadlineExceeded) {
		if err == nil {
			l.Unlock(context.Background())
		}
		t.Fatalf("second contender: got %v, want its context's deadline error while the lock is held", err)
	}
	if err := held.Unlock(ctxFor(t)); err != nil {
		t.Fatalf("unlock: %v", err)
	}
	l, err := b.Lock(ctxFor(t), name)
	if err != nil {
		t.Fatalf("lock after release: %v", err)
	}
	l.Unlock(ctxFor(t))
}

func testLockReleasedOnClose(t *testing.T, s Server) {
	name := prefixFor(t, s) + "mutex"
	a := s.NewClient(t)
	if _, err := a.Lock(ctxFor(t), name); err != nil {
		t.Fatalf("lock: %v", err)
	}
	if err := a.Close(ctxFor(t)); err != nil {
		t.Fatalf("close: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	l, err := s.NewClient(t).Lock(ctx, name)
	if err != nil {
		t.Fatalf("lock held by a closed client was not released: %v", err)
	}
	l.Unlock(ctxFor(t))
}

// testGuardedWriteLost: once the holder's lease is gone, a guarded write is
// refused atomically and changes nothing.
func testGuardedWriteLost(t *testing.T, s Server) {
	p := prefixFor(t, s)
	c := s.NewClient(t)
	l, err := c.Lock(ctxFor(t), p+"mutex")
	if err != nil {
		t.Fatalf("lock: %v", err)
	}
	if _, err := c.Update(ctxFor(t), p+"k", []byte("under lock"), kvstore.Guarded(l)); err != nil {
		t.Fatalf("guarded write while holding the lock: %v", err)
	}
	s.(LeaseKiller).KillLease(t, c)
	select {
	case <-l.Done():
	case <-time.After(leaseDeadline(s)):
		t.Fatalf("lock.Done not closed within %v of losing the lease", leaseDeadline(s))
	}
	_, err = c.Update(ctxFor(t), p+"k", []byte("after loss"), kvstore.Guarded(l))
	wantErr(t, "guarded write after the lock was lost", err, kvstore.ErrLockLost)
	_, err = c.Create(ctxFor(t), p+"new", []byte("after loss"), kvstore.Guarded(l))
	wantErr(t, "guarded create after the lock was lost", err, kvstore.ErrLockLost)
	if kv := mustGet(t, c, p+"k"); string(kv.Value) != "under lock" {
		t.Fatalf("refused guarded write changed the key to %q", kv.Value)
	}
	if _, err := c.Get(ctxFor(t), p+"new"); !errors.Is(err, kvstore.ErrNotFound) {
		t.Fatalf("refused guarded create left the key behind: %v", err)
	}
	if err := l.Unlock(ctxFor(t)); err != nil {
		t.Fatalf("unlocking a lost lock must not fail: %v", err)
	}
}

// testLockAfterLeaseKilled: the store ended the client's lease and the
// client has not noticed yet; Lock must take a fresh lease, not fail.
func testLockAfterLeaseKilled(t *testing.T, s Server) {
	c := s.NewClient(t)
	p := prefixFor(t, s)
	mustUpdate(t, c, p+"k", "v", kvstore.Leased()) // the client now holds a lease
	s.(LeaseKiller).KillLease(t, c)
	l, err := c.Lock(ctxFor(t), p+"mutex")
	if err != nil {
		t.Fatalf("lock right after the lease was killed: %v", err)
	}
	if _, err := c.Update(ctxFor(t), p+"guarded", []byte("x"), kvstore.Guarded(l)); err != nil {
		t.Fatalf("guarded write under the new lock: %v", err)
	}
	if err := l.Unlock(ctxFor(t)); err != nil {
		t.Fatalf("unlock: %v", err)
	}
}

package consul_test

import (
	"context"
	"errors"
	"runtime"
	"testing"
	"time"

	"github.com/weftnet/weft/kvstore"
)

// TestSessionDestroyed: when the session is invalidated behind the client's
// back, its leased keys vanish, LeaseLost and the lock's Done close, writes
// guarded by that lock are refused, and the next leased write and lock run
// under a fresh session at once (no 15s lock delay).
func TestSessionDestroyed(t *testing.T) {
	s := startAgent(t, "")
	ctx := ctx(t)
	c := open(t, s)
	adm := admin(t, s, "")

	lost := c.LeaseLost()
	if _, err := c.Create(ctx, "weft/leased", []byte("1"), kvstore.Leased()); err != nil {
		t.Fatal(err)
	}
	l, err := c.Lock(ctx, "ipam")
	if err != nil {
		t.Fatal(err)
	}
	lockKey := kvstore.LockKey("weft/", "ipam")
	id := sessionOf(t, adm, lockKey)
	if id == "" || id != sessionOf(t, adm, "weft/leased") {
		t.Fatalf("lock and leased key should share the client's session, got %q and %q", id, sessionOf(t, adm, "weft/leased"))
	}
	if _, err := adm.Session().Destroy(id, nil); err != nil {
		t.Fatal(err)
	}

	// Renewal runs every TTL/3 (3.3s here) and notices the loss.
	if !closedWithin(lost, 15*time.Second) {
		t.Fatal("LeaseLost not closed after the session was destroyed")
	}
	if !isClosed(l.Done()) {
		t.Fatal("lock's Done not closed with its session")
	}
	if _, err := c.Get(ctx, "weft/leased"); !errors.Is(err, kvstore.ErrNotFound) {
		t.Fatalf("leased key after session loss: %v, want ErrNotFound", err)
	}
	if _, err := c.Update(ctx, "weft/guarded", []byte("x"), kvstore.Guarded(l)); !errors.Is(err, kvstore.ErrLockLost) {
		t.Fatalf("write guarded by lost lock: %v, want ErrLockLost", err)
	}
	if _, err := c.Get(ctx, "weft/guarded"); !errors.Is(err, kvstore.ErrNotFound) {
		t.Fatalf("guarded write happened despite lost lock: %v", err)
	}
	if err := l.Unlock(ctx); err != nil {
		t.Fatalf("unlock lost lock: %v", err)
	}

	next := c.LeaseLost()
	if isClosed(next) {
		t.Fatal("LeaseLost after loss returned a closed channel")
	}
	if _, err := c.Create(ctx, "weft/leased", []byte("2"), kvstore.Leased()); err != nil {
		t.Fatalf("leased write under fresh session: %v", err)
	}
	relock, err := c.Lock(ctx, "ipam")
	if err != nil {
		t.Fatalf("re-lock under fresh session: %v", err)
	}
	if sid := sessionOf(t, adm, lockKey); sid == "" || sid == id {
		t.Fatalf("re-lock holder %q, want a fresh session (old %q)", sid, id)
	}
	if _, err := c.Update(ctx, "weft/guarded", []byte("y"), kvstore.Guarded(relock)); err != nil {
		t.Fatalf("write guarded by fresh lock: %v", err)
	}
	if err := relock.Unlock(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestSessionLostOnAgentRestart: a dev agent forgets every session when it
// restarts; the client notices and recovers on its own.
func TestSessionLostOnAgentRestart(t *testing.T) {
	s := startAgent(t, "")
	ctx := ctx(t)
	c := open(t, s)
	lost := c.LeaseLost()
	if _, err := c.Update(ctx, "weft/a", []byte("1"), kvstore.Leased()); err != nil {
		t.Fatal(err)
	}
	if err := s.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	if !closedWithin(lost, 15*time.Second) {
		t.Fatal("LeaseLost not closed after the agent restarted")
	}
	if _, err := c.Update(ctx, "weft/a", []byte("2"), kvstore.Leased()); err != nil {
		t.Fatalf("leased write after restart: %v", err)
	}
	kv, err := c.Get(ctx, "weft/a")
	if err != nil || string(kv.Value) != "2" || !kv.Leased {
		t.Fatalf("after restart: %+v, %v", kv, err)
	}
}

// TestLeasedWriteAfterRestartBeforeRenewal: a leased write that finds its
// session gone before renewal noticed retries under a fresh session.
func TestLeasedWriteAfterRestartBeforeRenewal(t *testing.T) {
	s := startAgent(t, "")
	ctx := ctx(t)
	c := open(t, s)
	lost := c.LeaseLost()
	if _, err := c.Update(ctx, "weft/a", []byte("1"), kvstore.Leased()); err != nil {
		t.Fatal(err)
	}
	if err := s.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	// Right away: renewal (every 3.3s) has most likely not run yet.
	if _, err := c.Update(ctx, "weft/a", []byte("2"), kvstore.Leased()); err != nil {
		t.Fatalf("leased write right after restart: %v", err)
	}
	if !isClosed(lost) {
		t.Fatal("write found the session gone but LeaseLost is still open")
	}
	if kv, err := c.Get(ctx, "weft/a"); err != nil || !kv.Leased {
		t.Fatalf("after restart: %+v, %v", kv, err)
	}
}

// TestCloseReleasesEverything: Close removes leased keys, frees locks for
// other clients at once, and later calls fail with ErrClosed.
func TestCloseReleasesEverything(t *testing.T) {
	s := startAgent(t, "")
	ctx := ctx(t)
	a, b := open(t, s), open(t, s)
	if _, err := a.Update(ctx, "weft/a", []byte("1"), kvstore.Leased()); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Update(ctx, "weft/plain", []byte("1")); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Lock(ctx, "l"); err != nil {
		t.Fatal(err)
	}
	lost := a.LeaseLost()
	if err := a.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if !isClosed(lost) {
		t.Fatal("LeaseLost open after Close")
	}
	if _, err := b.Get(ctx, "weft/a"); !errors.Is(err, kvstore.ErrNotFound) {
		t.Fatalf("leased key after Close: %v, want ErrNotFound", err)
	}
	if _, err := b.Get(ctx, "weft/plain"); err != nil {
		t.Fatalf("unleased key after Close: %v", err)
	}
	lctx, cancel := context.WithTimeout(ctx, 10*time.Second) // well under Consul's default 15s lock delay
	defer cancel()
	l, err := b.Lock(lctx, "l")
	if err != nil {
		t.Fatalf("lock released by Close: %v", err)
	}
	_ = l.Unlock(ctx)

	if _, err := a.Get(ctx, "weft/plain"); !errors.Is(err, kvstore.ErrClosed) {
		t.Fatalf("Get after Close: %v, want ErrClosed", err)
	}
	if _, err := a.Lock(ctx, "x"); !errors.Is(err, kvstore.ErrClosed) {
		t.Fatalf("Lock after Close: %v, want ErrClosed", err)
	}
	if _, ok := <-a.ListAndWatch(ctx, "weft/"); ok {
		t.Fatal("ListAndWatch after Close emitted an event")
	}
	if err := a.Close(ctx); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

// TestCloseLeavesNoGoroutines: renewal, watches, lock waiters and their
// connections all end with Close.
func TestCloseLeavesNoGoroutines(t *testing.T) {
	s := startAgent(t, "")
	ctx := ctx(t)
	other := open(t, s)
	held, err := other.Lock(ctx, "busy")
	if err != nil {
		t.Fatal(err)
	}
	defer held.Unlock(ctx)
	before := runtime.NumGoroutine()

	c := open(t, s)
	if _, err := c.Update(ctx, "weft/a", []byte("1"), kvstore.Leased()); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Lock(ctx, "mine"); err != nil {
		t.Fatal(err)
	}
	events := c.ListAndWatch(ctx, "weft/")
	<-events
	waiter := make(chan error, 1)
	go func() { _, err := c.Lock(ctx, "busy"); waiter <- err }()
	select {
	case err := <-waiter:
		t.Fatalf("lock held by another client returned %v; want it to wait", err)
	case <-time.After(200 * time.Millisecond): // give it time to block
	}

	if err := c.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-waiter; !errors.Is(err, kvstore.ErrClosed) {
		t.Fatalf("lock waiting when the client closed: %v, want ErrClosed", err)
	}
	for range events { // closed by Close
	}
	eventually(t, 10*time.Second, "goroutines back to the count before the client", func() bool {
		return runtime.NumGoroutine() <= before
	})
}

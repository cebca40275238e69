// Package statetest holds helpers for the state packages' integration
// tests: running one test body against real etcd and real Consul, polling a
// condition with a deadline, and a logger that writes to the test log.
package statetest

import (
	"context"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/weftnet/weft/kvstore"
	"github.com/weftnet/weft/kvstore/kvstoretest"
)

// Each runs fn as a subtest against a fresh embedded etcd and a fresh Consul
// agent (kvstoretest.Servers), in sequence.
func Each(t *testing.T, fn func(t *testing.T, s kvstoretest.Server)) {
	t.Helper()
	backends := []struct {
		name  string
		start func(testing.TB) kvstoretest.Server
	}{{"etcd", kvstoretest.StartEtcd}, {"consul", kvstoretest.StartConsul}}
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) { fn(t, b.start(t)) })
	}
}

// Context is bounded by d and cancelled when the test ends.
func Context(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// Eventually polls cond until it returns nil or timeout passes, then fails
// the test with what and cond's last error.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	delay := 5 * time.Millisecond
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v: %v", what, timeout, err)
		}
		time.Sleep(delay) // polling interval, not synchronisation
		delay = min(2*delay, 200*time.Millisecond)
	}
}

// Logger writes info and above to the test log, and drops lines once the
// test has ended (background goroutines may still be stopping).
func Logger(t testing.TB) *slog.Logger {
	w := &testWriter{t: t}
	t.Cleanup(func() { w.done.Store(true) })
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

type testWriter struct {
	t    testing.TB
	done atomic.Bool
}

func (w *testWriter) Write(p []byte) (int, error) {
	if !w.done.Load() {
		w.t.Log(strings.TrimSuffix(string(p), "\n"))
	}
	return len(p), nil
}

// Go runs fn in the background until the test ends: its context is
// cancelled and it is waited for in t.Cleanup (before clients close, when
// called after they were opened). fn's error fails the test.
func Go(t testing.TB, fn func(ctx context.Context) error) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := fn(ctx); err != nil && ctx.Err() == nil {
			t.Errorf("background run: %v", err)
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
}

// LeaseDeadline is how long a dead client's leased keys may linger on s:
// twice the TTL (Consul doubles it) plus slack for a loaded machine.
func LeaseDeadline(s kvstoretest.Server) time.Duration { return 2*s.Config().LeaseTTL + 15*time.Second }

// Unlimited removes the client rate limit (benchmarks and bulk tests).
func Unlimited(c *kvstore.Config) { c.RateLimit = kvstore.RateLimit{} }

// LongLease raises the lease TTL to at least 10 s, so that leases (and the
// locks on them) survive a busy machine.
func LongLease(c *kvstore.Config) { c.LeaseTTL = max(c.LeaseTTL, 10*time.Second) }

package kvstore

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestConfigValidate(t *testing.T) {
	cases := []struct {
		name string
		mod  func(*Config)
		want string // substring of the error; "" = valid
	}{
		{"default", func(*Config) {}, ""},
		{"consul", func(c *Config) { c.Backend = BackendConsul; c.LeaseTTL = 10 * time.Second }, ""},
		{"several endpoints", func(c *Config) { c.Endpoints = []string{"http://a:1", "https://b:2"} }, ""},
		{"etcd unix socket", func(c *Config) { c.Endpoints = []string{"unix:///run/etcd.sock"} }, ""},
		{"unknown backend", func(c *Config) { c.Backend = "redis" }, `backend "redis": accepted are "etcd" and "consul"`},
		{"no endpoints", func(c *Config) { c.Endpoints = nil }, "give at least one URL"},
		{"no scheme", func(c *Config) { c.Endpoints = []string{"127.0.0.1:2379"} }, "no scheme"},
		{"bad scheme", func(c *Config) { c.Endpoints = []string{"grpc://h:1"} }, "scheme must be http or https"},
		{"no port", func(c *Config) { c.Endpoints = []string{"http://h"} }, "needs host:port"},
		{"path", func(c *Config) { c.Endpoints = []string{"http://h:1/v2"} }, "unexpected path"},
		{"consul unix", func(c *Config) {
			c.Backend = BackendConsul
			c.LeaseTTL = 10 * time.Second
			c.Endpoints = []string{"unix:///x"}
		}, "unix sockets are accepted for etcd only"},
		{"empty prefix", func(c *Config) { c.Prefix = "" }, "prefix is empty"},
		{"prefix without slash", func(c *Config) { c.Prefix = "weft" }, "must end in"},
		{"prefix with space", func(c *Config) { c.Prefix = "we ft/" }, "printable ASCII"},
		{"consul short ttl", func(c *Config) { c.Backend = BackendConsul; c.LeaseTTL = 2 * time.Second }, "accepted is 10s to 24h"},
		{"zero dial timeout", func(c *Config) { c.DialTimeout = 0 }, "dial timeout"},
		{"negative qps", func(c *Config) { c.RateLimit.QPS = -1 }, "must not be negative"},
		{"cert without key", func(c *Config) { c.TLS.CertFile = "c.pem" }, "both a certificate and a key"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultConfig()
			tc.mod(&cfg)
			err := cfg.Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("valid config refused: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("got error %v, want one saying %q", err, tc.want)
			}
		})
	}
}

func TestCheck(t *testing.T) {
	cases := []struct {
		key   string
		value int
		want  error
		text  string
	}{
		{"weft/a", 10, nil, ""},
		{"other/a", 10, ErrOutsidePrefix, "other/a"},
		{"weft", 10, ErrOutsidePrefix, ""},
		{"weft/big", 101, ErrValueTooLarge, "101 bytes, at most 100"},
		{"weft/" + strings.Repeat("k", MaxKeySize), 1, nil, "at most 1024"},
		{"weft/nul\x00", 1, nil, "without NUL"},
	}
	for _, tc := range cases {
		err := Check("weft/", tc.key, make([]byte, tc.value), 100)
		if tc.want == nil && tc.text == "" {
			if err != nil {
				t.Errorf("Check(%q) = %v, want ok", tc.key, err)
			}
			continue
		}
		if err == nil || (tc.want != nil && !errors.Is(err, tc.want)) || !strings.Contains(err.Error(), tc.text) {
			t.Errorf("Check(%.20q) = %v, want %v saying %q", tc.key, err, tc.want, tc.text)
		}
	}
}

// TestLimiterBootstrap: the bootstrap rate lets a burst through at start;
// after the bootstrap period the steady rate applies.
func TestLimiterBootstrap(t *testing.T) {
	l := NewLimiter(RateLimit{QPS: 1, Burst: 1, BootstrapQPS: 1000, BootstrapPeriod: 200 * time.Millisecond})
	ctx := context.Background()
	for i := range 50 { // far more than the steady burst of 1
		quick, cancel := context.WithTimeout(ctx, 5*time.Second)
		if err := l.Wait(quick); err != nil {
			t.Fatalf("request %d during bootstrap was held back: %v", i, err)
		}
		cancel()
	}
	for time.Now().Before(l.bootstrap) {
		time.Sleep(10 * time.Millisecond)
	}
	if err := l.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	if err := l.Wait(short); err == nil {
		t.Fatal("a second request within 100ms passed the steady limit of 1/s")
	}
}

func TestLimiterUnlimited(t *testing.T) {
	l := NewLimiter(RateLimit{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // an unlimited limiter never waits, even on a dead context
	if err := l.Wait(ctx); err != nil {
		t.Fatalf("unlimited limiter: %v", err)
	}
}

func TestKeyedMutex(t *testing.T) {
	var m KeyedMutex
	var inside, overlaps atomic.Int32
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 200 {
				unlock, err := m.Lock(context.Background(), "k")
				if err != nil {
					t.Error(err)
					return
				}
				if inside.Add(1) != 1 {
					overlaps.Add(1)
				}
				inside.Add(-1)
				unlock()
			}
		}()
	}
	wg.Wait()
	if overlaps.Load() != 0 {
		t.Fatalf("%d overlaps", overlaps.Load())
	}
	unlock, _ := m.Lock(context.Background(), "k")
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := m.Lock(ctx, "k"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("lock of a held key: %v, want the context's deadline", err)
	}
	if _, err := m.Lock(context.Background(), "other"); err != nil {
		t.Fatalf("another key must not wait: %v", err)
	}
	unlock()
	if len(m.slots) != 1 { // "other" is still held
		t.Fatalf("released keys not forgotten: %d slots", len(m.slots))
	}
}

package kvstoretest

import (
	"context"
	"errors"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/weftnet/weft/kvstore"
	"github.com/weftnet/weft/kvstore/dial"
)

// leaseDeadline is how long a dead client's leased keys may linger: the TTL
// (Consul may take up to twice its session TTL) plus slack for a loaded machine.
func leaseDeadline(s Server) time.Duration { return 2*s.Config().LeaseTTL + 10*time.Second }

func testLeaseCloseRevokes(t *testing.T, s Server) {
	c := s.NewClient(t)
	key := prefixFor(t, s) + "leased"
	mustUpdate(t, c, key, "alive", kvstore.Leased())
	if kv := mustGet(t, c, key); !kv.Leased {
		t.Fatalf("leased write stored %+v, want Leased", kv)
	}
	if err := c.Close(ctxFor(t)); err != nil {
		t.Fatalf("close: %v", err)
	}
	other := s.NewClient(t)
	eventually(t, 5*time.Second, "leased key gone after close", func() error {
		_, err := other.Get(ctxFor(t), key)
		if errors.Is(err, kvstore.ErrNotFound) {
			return nil
		}
		return errors.New("still present")
	})
}

// testLeaseProcessKilled: a process writes a leased key and is killed with
// SIGKILL (no chance to revoke); the key vanishes within the lease TTL.
func testLeaseProcessKilled(t *testing.T, s Server) {
	key := prefixFor(t, s) + "leased-by-child"
	child := startChild(t, s.Config(), key)
	c := s.NewClient(t)
	if kv := mustGet(t, c, key); !kv.Leased {
		t.Fatalf("child's key %+v is not leased", kv)
	}
	killed := time.Now()
	child.kill(t)
	eventually(t, leaseDeadline(s), "leased key of a killed process vanishes", func() error {
		_, err := c.Get(ctxFor(t), key)
		if errors.Is(err, kvstore.ErrNotFound) {
			return nil
		}
		return errors.New("still present")
	})
	t.Logf("key vanished %v after SIGKILL (lease TTL %v)", time.Since(killed).Round(100*time.Millisecond), s.Config().LeaseTTL)
}

// testLeaseLost: the store ends the client's lease; LeaseLost fires, leased
// keys are gone, and the next leased write runs under a fresh lease.
func testLeaseLost(t *testing.T, s Server) {
	c := s.NewClient(t)
	key := prefixFor(t, s) + "leased"
	mustUpdate(t, c, key, "v1", kvstore.Leased())
	lost := c.LeaseLost()
	s.(LeaseKiller).KillLease(t, c)
	select {
	case <-lost:
	case <-time.After(leaseDeadline(s)):
		t.Fatalf("LeaseLost not signalled within %v of the lease being killed", leaseDeadline(s))
	}
	_, err := c.Get(ctxFor(t), key)
	wantErr(t, "leased key after lease loss", err, kvstore.ErrNotFound)
	mustUpdate(t, c, key, "v2", kvstore.Leased())
	if kv := mustGet(t, c, key); !kv.Leased || string(kv.Value) != "v2" {
		t.Fatalf("write under the new lease stored %+v", kv)
	}
}

// testUnreachable: a store that does not answer fails Open within the dial
// timeout, with an error naming the endpoint.
func testUnreachable(t *testing.T, s Server) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + l.Addr().String()
	l.Close() // nothing listens there any more
	cfg := s.Config()
	cfg.Endpoints = []string{dead}
	cfg.DialTimeout = time.Second
	start := time.Now()
	c, err := dial.Open(context.Background(), cfg, testLogger(t))
	if err == nil {
		c.Close(context.Background())
		t.Fatalf("open %s succeeded; want an error", dead)
	}
	if took := time.Since(start); took > 15*time.Second {
		t.Fatalf("open of an unreachable store took %v with a 1s dial timeout", took)
	}
	if !strings.Contains(err.Error(), strings.TrimPrefix(dead, "http://")) {
		t.Fatalf("error %q does not name the endpoint %s", err, dead)
	}

	for _, bad := range []struct {
		mod  func(*kvstore.Config)
		want string
	}{
		{func(c *kvstore.Config) { c.Endpoints = []string{"127.0.0.1:2379"} }, "scheme"},
		{func(c *kvstore.Config) { c.Endpoints = []string{"http://"} }, "host:port"},
		{func(c *kvstore.Config) { c.Endpoints = []string{"ftp://h:1"} }, "scheme"},
		{func(c *kvstore.Config) { c.Prefix = "" }, "prefix is empty"},
		{func(c *kvstore.Config) { c.Prefix = "weft" }, "must end in"},
		{func(c *kvstore.Config) { c.Backend = "zookeeper" }, "accepted are"},
	} {
		cfg := s.Config()
		bad.mod(&cfg)
		c, err := dial.Open(context.Background(), cfg, testLogger(t))
		if err == nil {
			c.Close(context.Background())
			t.Errorf("open with %+v succeeded; want an error mentioning %q", cfg, bad.want)
		} else if !strings.Contains(err.Error(), bad.want) {
			t.Errorf("open error %q does not say %q", err, bad.want)
		}
	}
}

// testCloseUnreachable: a client cut off its store still closes, within the
// dial timeout, instead of waiting forever to revoke its lease; the leased
// key then goes by the TTL.
func testCloseUnreachable(t *testing.T, s Server) {
	u, err := url.Parse(s.Config().Endpoints[0])
	if err != nil {
		t.Fatal(err)
	}
	proxy := NewProxy(t, u.Host)
	cfg := s.Config()
	cfg.Endpoints = []string{u.Scheme + "://" + proxy.Addr()}
	cfg.DialTimeout = 2 * time.Second
	c, err := dial.Open(context.Background(), cfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	key := prefixFor(t, s) + "leased"
	mustUpdate(t, c, key, "v", kvstore.Leased())
	proxy.Cut()
	done := make(chan error, 1)
	go func() { done <- c.Close(context.Background()) }()
	select {
	case err := <-done:
		t.Logf("close of a cut-off client returned: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("Close of a client cut off its store still waiting after 30s (dial timeout 2s)")
	}
	other := s.NewClient(t)
	eventually(t, leaseDeadline(s), "leased key of the cut-off client expires", func() error {
		if _, err := other.Get(ctxFor(t), key); errors.Is(err, kvstore.ErrNotFound) {
			return nil
		}
		return errors.New("still present")
	})
}

package consul_test

import (
	"context"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/weftnet/weft/internal/testgate"
	"github.com/weftnet/weft/internal/toolcache"
	"github.com/weftnet/weft/kvstore"
	"github.com/weftnet/weft/kvstore/consul"
	"github.com/weftnet/weft/kvstore/consulserver"
)

// startAgent runs a dev-mode agent for t, with extra HCL configuration.
func startAgent(t *testing.T, hcl string) *consulserver.Server {
	t.Helper()
	return startAgentToken(t, hcl, "")
}

// startAgentToken is startAgent for an agent with ACLs; token is its
// management token.
func startAgentToken(t *testing.T, hcl, token string) *consulserver.Server {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	bin, err := toolcache.Ensure(ctx, toolcache.Consul(), os.Stderr)
	if err != nil {
		testgate.Skip(t, "consul binary unavailable: "+err.Error())
	}
	s, err := consulserver.Start(ctx, consulserver.Options{DataDir: t.TempDir(), Binary: bin, Log: t.Output(), HCL: hcl, Token: token})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Stop(); err != nil {
			t.Error(err)
		}
	})
	return s
}

func config(endpoints ...string) kvstore.Config {
	return kvstore.Config{
		Backend:      kvstore.BackendConsul,
		Endpoints:    endpoints,
		Prefix:       "weft/",
		DialTimeout:  5 * time.Second,
		LeaseTTL:     10 * time.Second,
		MaxValueSize: consulValueLimit,
	}
}

// open connects a client to s and closes it in t.Cleanup.
func open(t *testing.T, s *consulserver.Server, mods ...func(*kvstore.Config)) *consul.Client {
	t.Helper()
	cfg := config(s.Endpoint())
	for _, m := range mods {
		m(&cfg)
	}
	c, err := consul.New(ctx(t), cfg, slog.New(slog.NewTextHandler(t.Output(), nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = c.Close(cctx)
	})
	return c
}

// admin is a plain api client with the agent's management token, for
// meddling with the store behind Weft's back.
func admin(t *testing.T, s *consulserver.Server, token string) *api.Client {
	t.Helper()
	c, err := api.NewClient(&api.Config{Address: s.Endpoint(), Token: token})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// ctx is a generous per-test deadline.
func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return c
}

// eventually polls cond every 20ms until it holds or timeout passes.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// closedWithin reports whether ch closes within timeout.
func closedWithin(ch <-chan struct{}, timeout time.Duration) bool {
	select {
	case <-ch:
		return true
	case <-time.After(timeout):
		return false
	}
}

func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// sessionOf returns the session holding key ("" when none or missing).
func sessionOf(t *testing.T, a *api.Client, key string) string {
	t.Helper()
	p, _, err := a.KV().Get(key, nil)
	if err != nil {
		t.Fatal(err)
	}
	if p == nil {
		return ""
	}
	return p.Session
}

// consulValueLimit is Consul's own limit for one KV value; the tests raise
// MaxValueSize to it to reach the agent's transaction size limit.
const consulValueLimit = 512 << 10

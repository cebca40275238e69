package consul_test

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/weftnet/weft/kvstore"
	"github.com/weftnet/weft/kvstore/consul"
)

// TestNewRefuses covers configurations and endpoints that cannot work: the
// error names what was wrong, and a silent endpoint fails within the dial
// timeout rather than hanging.
func TestNewRefuses(t *testing.T) {
	// A listener that accepts connections and never answers.
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { silent.Close() })
	silentURL := "http://" + silent.Addr().String()

	tests := []struct {
		name string
		mod  func(*kvstore.Config)
		want string
	}{
		{"refused", func(c *kvstore.Config) { c.Endpoints = []string{"http://127.0.0.1:1"} },
			"connect to consul at http://127.0.0.1:1"},
		{"silent", func(c *kvstore.Config) { c.Endpoints = []string{silentURL}; c.DialTimeout = time.Second },
			"connect to consul at " + silentURL},
		{"etcd backend", func(c *kvstore.Config) { c.Backend = kvstore.BackendEtcd }, `backend "etcd"`},
		{"short ttl", func(c *kvstore.Config) { c.LeaseTTL = time.Second }, "lease TTL 1s"},
		{"bad prefix", func(c *kvstore.Config) { c.Prefix = "weft" }, `prefix "weft"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := config("http://127.0.0.1:1")
			tc.mod(&cfg)
			done := make(chan error, 1)
			go func() {
				_, err := consul.New(context.Background(), cfg, nil)
				done <- err
			}()
			select {
			case err := <-done:
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("New: error %v, want one containing %q", err, tc.want)
				}
			case <-time.After(30 * time.Second):
				t.Fatal("New still waiting after 30s")
			}
		})
	}
}

// TestNewSkipsDeadEndpoint connects through the first endpoint that answers.
func TestNewSkipsDeadEndpoint(t *testing.T) {
	s := startAgent(t, "")
	c := open(t, s, func(c *kvstore.Config) { c.Endpoints = []string{"http://127.0.0.1:1", s.Endpoint()} })
	if _, err := c.Update(ctx(t), "weft/a", []byte("1")); err != nil {
		t.Fatal(err)
	}
}

// TestACLToken: with ACLs enforced, the configured token is what grants
// access, and a client without it is refused.
func TestACLToken(t *testing.T) {
	const token = "3f1e6a52-5d0c-4d8e-9b6a-0c7c2b1d9e11"
	s := startAgentToken(t, `acl { enabled = true
		default_policy = "deny"
		tokens { initial_management = "`+token+`" } }`, token)
	ctx := ctx(t)

	anon := open(t, s)
	if _, err := anon.Update(ctx, "weft/a", []byte("1")); err == nil || !strings.Contains(err.Error(), "Permission denied") {
		t.Fatalf("write without token: error %v, want a permission refusal", err)
	}

	c := open(t, s, func(c *kvstore.Config) { c.Token = token })
	if _, err := c.Update(ctx, "weft/a", []byte("1"), kvstore.Leased()); err != nil {
		t.Fatalf("leased write with token: %v", err)
	}
	kv, err := c.Get(ctx, "weft/a")
	if err != nil || string(kv.Value) != "1" || !kv.Leased {
		t.Fatalf("get with token: %+v, %v", kv, err)
	}
	if _, err := anon.Get(ctx, "weft/a"); err == nil || errors.Is(err, kvstore.ErrNotFound) {
		t.Fatalf("read without token: error %v, want a refusal", err)
	}
}

// TestLeaseBinding: a write binds the key exactly as asked, taking it over
// from another client's session or dropping a binding.
func TestLeaseBinding(t *testing.T) {
	s := startAgent(t, "")
	ctx := ctx(t)
	a, b := open(t, s), open(t, s)
	const key = "weft/state/nodes/v1/c1/n1"

	if _, err := a.Update(ctx, key, []byte("v"), kvstore.Leased()); err != nil {
		t.Fatal(err)
	}
	wrote, err := b.UpdateIfDifferent(ctx, key, []byte("v"), kvstore.Leased())
	if err != nil || !wrote {
		t.Fatalf("b takes over a's leased key: wrote %v, err %v; want a write", wrote, err)
	}
	if wrote, err := b.UpdateIfDifferent(ctx, key, []byte("v"), kvstore.Leased()); err != nil || wrote {
		t.Fatalf("same value and binding again: wrote %v, err %v; want no write", wrote, err)
	}
	if err := a.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if kv, err := b.Get(ctx, key); err != nil || !kv.Leased {
		t.Fatalf("after a closed, b's key: %+v, %v; want it present and leased", kv, err)
	}

	if _, err := b.Update(ctx, key, []byte("v")); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(ctx); err != nil {
		t.Fatal(err)
	}
	c := open(t, s)
	if kv, err := c.Get(ctx, key); err != nil || kv.Leased {
		t.Fatalf("unleased write survives its writer: %+v, %v", kv, err)
	}
}

// TestStatus: the heartbeat written by WriteHeartbeat shows in Status, and
// a stopped agent shows as no quorum with an error naming it.
func TestStatus(t *testing.T) {
	s := startAgent(t, "")
	c := open(t, s)
	ctx := ctx(t)
	if st := c.Status(ctx); !st.Quorum || st.Err != nil || !st.Heartbeat.IsZero() {
		t.Fatalf("status before any heartbeat: %+v, want quorum and no heartbeat", st)
	}
	before := time.Now()
	if err := c.WriteHeartbeat(ctx); err != nil {
		t.Fatal(err)
	}
	st := c.Status(ctx)
	if !st.Quorum || st.Err != nil || st.Heartbeat.Before(before.Add(-time.Second)) || st.Backend != kvstore.BackendConsul {
		t.Fatalf("status after heartbeat at %v: %+v", before, st)
	}

	s.Kill()
	st = c.Status(ctx)
	if st.Quorum || st.Err == nil || !strings.Contains(st.Err.Error(), s.Endpoint()) {
		t.Fatalf("status with the agent gone: %+v, want no quorum and an error naming %s", st, s.Endpoint())
	}
}

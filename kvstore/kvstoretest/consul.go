package kvstoretest

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/weftnet/weft/internal/testgate"
	"github.com/weftnet/weft/internal/toolcache"
	"github.com/weftnet/weft/kvstore"
	"github.com/weftnet/weft/kvstore/consul"
	"github.com/weftnet/weft/kvstore/consulserver"
)

// consulStartTimeout bounds finding (or building, the first time on a
// machine) the consul binary and starting an agent.
const consulStartTimeout = 15 * time.Minute

// StartConsul runs a real dev-mode Consul agent on loopback for t and stops
// it in t.Cleanup. The agent's log is kept in t's temporary directory and
// printed when t fails. Without a consul binary that can be built, the test
// is skipped (failed in CI, see testgate).
func StartConsul(t testing.TB) Server {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), consulStartTimeout)
	defer cancel()
	dir := t.TempDir()
	logPath := filepath.Join(dir, "consul.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatalf("create consul log: %v", err)
	}
	t.Cleanup(func() { logFile.Close() })
	bin, err := toolcache.Ensure(ctx, toolcache.Consul(), logFile)
	if err != nil {
		testgate.Skip(t, "consul binary unavailable: "+err.Error())
	}
	srv, err := consulserver.Start(ctx, consulserver.Options{DataDir: dir, Binary: bin, Log: logFile})
	if err != nil {
		t.Fatalf("start consul agent: %v\n%s", err, tail(logPath))
	}
	t.Cleanup(func() {
		if err := srv.Stop(); err != nil {
			t.Errorf("stop consul agent: %v", err)
		}
		if t.Failed() {
			t.Logf("consul agent log (%s):\n%s", srv.Endpoint(), tail(logPath))
		}
	})
	return &consulServer{srv: srv}
}

type consulServer struct {
	srv *consulserver.Server
}

func (s *consulServer) Name() string { return kvstore.BackendConsul }

// Config reaches the agent under prefix "weft/", with Consul's shortest
// session TTL and no rate limit.
func (s *consulServer) Config() kvstore.Config {
	cfg := kvstore.DefaultConfig()
	cfg.Backend = kvstore.BackendConsul
	cfg.Endpoints = []string{s.srv.Endpoint()}
	cfg.LeaseTTL = 10 * time.Second
	cfg.RateLimit = kvstore.RateLimit{}
	return cfg
}

// NewClient opens a client on the agent with mods applied to Config, and
// closes it in t.Cleanup.
func (s *consulServer) NewClient(t testing.TB, mods ...func(*kvstore.Config)) kvstore.Client {
	t.Helper()
	cfg := s.Config()
	for _, mod := range mods {
		mod(&cfg)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := consul.New(ctx, cfg, testLogger(t))
	if err != nil {
		t.Fatalf("open consul client: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = c.Close(ctx) // tests close some clients themselves, or stop the agent first
	})
	return c
}

// KillLease destroys the client's session behind its back, as an operator
// or a session expiry would.
func (s *consulServer) KillLease(t testing.TB, c kvstore.Client) {
	t.Helper()
	cc, ok := c.(*consul.Client)
	if !ok || cc.SessionID() == "" {
		t.Fatalf("kill lease: client %T holds no consul session", c)
	}
	raw, err := api.NewClient(&api.Config{Address: s.srv.Endpoint()})
	if err != nil {
		t.Fatalf("open raw consul client: %v", err)
	}
	if _, err := raw.Session().Destroy(cc.SessionID(), nil); err != nil {
		t.Fatalf("destroy session %s: %v", cc.SessionID(), err)
	}
}

// Restart stops the agent and starts it again on the same endpoint. A dev
// agent comes back empty: every key and session is gone.
func (s *consulServer) Restart(t testing.TB) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := s.srv.Restart(ctx); err != nil {
		t.Fatalf("restart consul agent: %v", err)
	}
}

// tail returns the last lines of a log file, for failure messages.
func tail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	const keep = 8 << 10
	if len(b) > keep {
		b = b[len(b)-keep:]
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			b = b[i+1:]
		}
	}
	return string(b)
}

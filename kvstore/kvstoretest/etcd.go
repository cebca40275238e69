package kvstoretest

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/weftnet/weft/kvstore"
	"github.com/weftnet/weft/kvstore/etcd"
	"github.com/weftnet/weft/kvstore/etcdserver"
)

// etcdServer is one embedded member or a static cluster in this process.
type etcdServer struct {
	name    string
	single  *etcdserver.Server
	cluster *etcdserver.Cluster
}

// StartEtcd starts an embedded single-member etcd in a temporary directory;
// it is stopped when the test ends.
func StartEtcd(t testing.TB) Server {
	t.Helper()
	s, err := etcdserver.Start(context.Background(), etcdserver.Options{DataDir: t.TempDir(), LogLevel: "fatal"})
	if err != nil {
		t.Fatalf("start embedded etcd: %v", err)
	}
	t.Cleanup(s.Stop)
	return &etcdServer{name: "etcd", single: s}
}

// StartEtcdCluster starts a static n-member etcd cluster in this process.
func StartEtcdCluster(t testing.TB, n int) Server {
	t.Helper()
	c, err := etcdserver.StartCluster(context.Background(), t.TempDir(), n, "fatal")
	if err != nil {
		t.Fatalf("start %d-member etcd cluster: %v", n, err)
	}
	t.Cleanup(c.Stop)
	return etcdCluster{&etcdServer{name: "etcd-cluster", cluster: c}}
}

// etcdCluster is a multi-member etcdServer, which can lose a member.
type etcdCluster struct{ *etcdServer }

func (s etcdCluster) StopMember(t testing.TB, i int) {
	t.Helper()
	if i >= len(s.cluster.Members) {
		t.Fatalf("stop member %d: the cluster has %d", i, len(s.cluster.Members))
	}
	s.cluster.Members[i].Stop()
}

func (s *etcdServer) Name() string { return s.name }

func (s *etcdServer) endpoints() []string {
	if s.cluster != nil {
		return s.cluster.Endpoints()
	}
	return s.single.Endpoints()
}

func (s *etcdServer) Config() kvstore.Config {
	cfg := kvstore.DefaultConfig()
	cfg.Backend = kvstore.BackendEtcd
	cfg.Endpoints = s.endpoints()
	cfg.LeaseTTL = 2 * time.Second
	cfg.RateLimit = kvstore.RateLimit{}
	return cfg
}

func (s *etcdServer) NewClient(t testing.TB, mods ...func(*kvstore.Config)) kvstore.Client {
	t.Helper()
	cfg := s.Config()
	for _, m := range mods {
		m(&cfg)
	}
	c, err := etcd.New(context.Background(), cfg, testLogger(t))
	if err != nil {
		t.Fatalf("open etcd client: %v", err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

func (s *etcdServer) Restart(t testing.TB) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var err error
	if s.cluster != nil {
		err = s.cluster.Restart(ctx)
	} else {
		err = s.single.Restart(ctx)
	}
	if err != nil {
		t.Fatalf("restart %s: %v", s.name, err)
	}
}

// raw is a plain etcd client for administrative actions behind the back of
// the client under test.
func (s *etcdServer) raw(t testing.TB) *clientv3.Client {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: s.endpoints(), DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatalf("open raw etcd client: %v", err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

func (s *etcdServer) KillLease(t testing.TB, c kvstore.Client) {
	t.Helper()
	ec, ok := c.(*etcd.Client)
	if !ok || ec.LeaseID() == 0 {
		t.Fatalf("kill lease: client %T holds no etcd lease", c)
	}
	if _, err := s.raw(t).Revoke(context.Background(), ec.LeaseID()); err != nil {
		t.Fatalf("revoke lease: %v", err)
	}
}

func (s *etcdServer) Compact(t testing.TB) {
	t.Helper()
	cli := s.raw(t)
	ctx := context.Background()
	resp, err := cli.Get(ctx, "compact-probe")
	if err != nil {
		t.Fatalf("read revision: %v", err)
	}
	if _, err := cli.Compact(ctx, resp.Header.Revision, clientv3.WithCompactPhysical()); err != nil {
		t.Fatalf("compact at %d: %v", resp.Header.Revision, err)
	}
}

// testLogger sends a component's logs to the test log (shown on failure or -v).
func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	defer func() { recover() }() // a log line after the test ended must not panic
	w.t.Log(string(p[:len(p)-1]))
	return len(p), nil
}

var _ io.Writer = testWriter{}

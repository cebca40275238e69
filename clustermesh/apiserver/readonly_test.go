package apiserver_test

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/weftnet/weft/clustermesh"
	"github.com/weftnet/weft/clustermesh/apiserver/apiservertest"
	"github.com/weftnet/weft/kvstore"
	"github.com/weftnet/weft/kvstore/etcd"
	"github.com/weftnet/weft/state/records"
	"github.com/weftnet/weft/state/statetest"
)

// connected starts c1 and c2 in one root and connects them the way
// `weft clustermesh connect c1 c2` does; it returns how c2 reaches c1:
// the endpoints and credentials c2 was given.
func connected(t *testing.T, modify func(*apiserverConfig)) (c1, c2 *apiservertest.Cluster, remote kvstore.Config) {
	t.Helper()
	ctx := statetest.Context(t, time.Minute)
	root := t.TempDir()
	c1 = apiservertest.Start(t, "c1", 1, apiservertest.Options{Root: root, Modify: modify})
	c2 = apiservertest.Start(t, "c2", 2, apiservertest.Options{Root: root})
	a, err1 := clustermesh.LoadTarget(root, "c1")
	b, err2 := clustermesh.LoadTarget(root, "c2")
	if err1 != nil || err2 != nil {
		t.Fatal(err1, err2)
	}
	if err := clustermesh.Connect(ctx, a, b, func(f string, args ...any) { t.Logf(f, args...) }); err != nil {
		t.Fatalf("connect c1 c2: %v", err)
	}
	src := c2.Store.NewClient(t)
	k := records.NewKeys(src.Prefix())
	kv, err := src.Get(ctx, k.Remote("c1"))
	if err != nil {
		t.Fatalf("c2's remote record for c1: %v", err)
	}
	rec, err := k.DecodeRemote(kv.Key, kv.Value)
	if err != nil {
		t.Fatal(err)
	}
	remote = kvstore.DefaultConfig()
	remote.Endpoints, remote.DialTimeout, remote.RateLimit = rec.Endpoints, 3*time.Second, kvstore.RateLimit{}
	remote.TLS = kvstore.TLSFiles{CAFile: filepath.Join(rec.ClientRef, clustermesh.CAFile),
		CertFile: filepath.Join(rec.ClientRef, clustermesh.ClientCert), KeyFile: filepath.Join(rec.ClientRef, clustermesh.ClientKey)}
	return c1, c2, remote
}

// refusedAs: the front's own refusals carry code; a range refusal is
// etcd's own "permission denied", which the etcd client turns into
// rpctypes.ErrPermissionDenied.
func refusedAs(err error, code codes.Code) bool {
	return status.Code(err) == code || code == codes.PermissionDenied && errors.Is(err, rpctypes.ErrPermissionDenied)
}

// TestRemoteCannotCompactOrLease: with the credentials `weft clustermesh
// connect` gave c2, c2 reads and watches c1's records through c1's front,
// and every other call (compaction, leases, writes, transactions,
// membership, auth, maintenance) is refused with PermissionDenied and
// changes nothing; the served store itself refuses the credentials.
func TestRemoteCannotCompactOrLease(t *testing.T) {
	ctx := statetest.Context(t, 3*time.Minute)
	metricsAddr := freeAddr(t)
	c1, _, remoteCfg := connected(t, func(cfg *apiserverConfig) { cfg.MetricsListen = metricsAddr })
	src := c1.Store.NewClient(t)
	sk := records.NewKeys(src.Prefix())
	node := func(name string) {
		put(t, src, sk.Node("c1", name), &records.Node{Name: name, Cluster: "c1", ClusterID: 1, Underlay: []netip.Addr{netip.MustParseAddr("192.168.1.1")}})
	}
	node("n1")
	root := served(t, c1, c1.Dir.Cert(clustermesh.UserRoot), c1.Dir.Key(clustermesh.UserRoot)).(*etcd.Client).Raw()
	k := records.NewKeys(kvstore.DefaultPrefix)

	remote := servedWith(t, remoteCfg).(*etcd.Client).Raw()
	var first int64
	statetest.Eventually(t, time.Minute, "c2 reads c1's node n1 through the front", func() error {
		resp, err := remote.Get(ctx, k.Node("c1", "n1"))
		if err == nil && len(resp.Kvs) != 1 {
			err = fmt.Errorf("got %d keys", len(resp.Kvs))
		}
		if err == nil {
			first = resp.Kvs[0].ModRevision
		}
		return err
	})
	wctx, wcancel := context.WithCancel(ctx)
	defer wcancel()
	wch := remote.Watch(clientv3.WithRequireLeader(wctx), k.NodesPrefix("c1"), clientv3.WithPrefix())
	leasesBefore, err := root.Leases(ctx)
	if err != nil {
		t.Fatal(err)
	}
	head, err := root.Get(ctx, k.Node("c1", "n1"))
	if err != nil {
		t.Fatal(err)
	}

	refused := map[string]func() error{
		"compact":       func() error { _, err := remote.Compact(ctx, head.Header.Revision); return err },
		"grant a lease": func() error { _, err := remote.Grant(ctx, 3600); return err },
		"keep a lease": func() error {
			// The etcd client reports only the EOF of its send: ask the stream.
			st, err := pb.NewLeaseClient(remote.ActiveConnection()).LeaseKeepAlive(ctx)
			if err == nil {
				st.Send(&pb.LeaseKeepAliveRequest{ID: 1})
				_, err = st.Recv()
			}
			return err
		},
		"revoke a lease":   func() error { _, err := remote.Revoke(ctx, 1); return err },
		"list leases":      func() error { _, err := remote.Leases(ctx); return err },
		"lease time":       func() error { _, err := remote.TimeToLive(ctx, 1); return err },
		"put":              func() error { _, err := remote.Put(ctx, k.Node("c1", "n9"), "{}"); return err },
		"delete":           func() error { _, err := remote.Delete(ctx, k.Node("c1", "n1")); return err },
		"txn (read only)":  func() error { _, err := remote.Txn(ctx).Then(clientv3.OpGet(k.Node("c1", "n1"))).Commit(); return err },
		"list members":     func() error { _, err := remote.MemberList(ctx); return err },
		"auth status":      func() error { _, err := remote.AuthStatus(ctx); return err },
		"list users":       func() error { _, err := remote.UserList(ctx); return err },
		"authenticate":     func() error { _, err := remote.Authenticate(ctx, "root", ""); return err },
		"list alarms":      func() error { _, err := remote.AlarmList(ctx); return err },
		"defragment":       func() error { _, err := remote.Defragment(ctx, remoteCfg.Endpoints[0]); return err },
		"hash":             func() error { _, err := remote.HashKV(ctx, remoteCfg.Endpoints[0], 0); return err },
		"endpoint status":  func() error { _, err := remote.Status(ctx, remoteCfg.Endpoints[0]); return err },
		"read the remotes": func() error { _, err := remote.Get(ctx, k.Remote(""), clientv3.WithPrefix()); return err },
		"read everything":  func() error { _, err := remote.Get(ctx, "", clientv3.WithFromKey()); return err },
	}
	for what, call := range refused {
		if err := call(); !refusedAs(err, codes.PermissionDenied) {
			t.Errorf("%s with c2's credentials: %v, want PermissionDenied", what, err)
		}
	}

	// Nothing changed: history before the refused compaction is still
	// readable, no lease was granted, n1 is still there.
	if _, err := root.Get(ctx, k.Node("c1", "n1"), clientv3.WithRev(first)); err != nil {
		t.Errorf("read at revision %d after the refused compaction: %v", first, err)
	}
	if leases, err := root.Leases(ctx); err != nil || len(leases.Leases) != len(leasesBefore.Leases) {
		t.Errorf("leases after the refused grant: %v (%v), want %d", leases, err, len(leasesBefore.Leases))
	}
	if resp, err := remote.Get(ctx, k.Node("c1", "n1")); err != nil || len(resp.Kvs) != 1 {
		t.Errorf("n1 after the refused calls: %v %v", resp, err)
	}

	// The watch opened before the refused calls delivers a new node.
	node("n2")
	deadline := time.After(time.Minute)
	for seen := false; !seen; {
		select {
		case wr, ok := <-wch:
			if !ok || wr.Err() != nil {
				t.Fatalf("watch through the front ended: %v", wr.Err())
			}
			for _, ev := range wr.Events {
				seen = seen || string(ev.Kv.Key) == k.Node("c1", "n2")
			}
		case <-deadline:
			t.Fatal("no watch event for n2 through the front within a minute")
		}
	}
	// A watch outside c1's records is refused.
	bad := remote.Watch(ctx, k.Remote(""), clientv3.WithPrefix())
	if wr := <-bad; !wr.Canceled {
		t.Errorf("watch on the remotes prefix: %+v, want canceled", wr)
	}

	// The same credentials straight at the served store: refused.
	direct := remoteCfg
	direct.Endpoints, direct.DialTimeout = c1.Cfg.StoreListen, 2*time.Second
	if cl, err := etcd.New(ctx, direct, statetest.Logger(t)); err == nil {
		_, err = cl.Raw().Compact(ctx, head.Header.Revision)
		cl.Close(ctx)
		t.Errorf("c2's credentials straight at c1's served store: connected (compact: %v), want refused", err)
	}

	statetest.Eventually(t, time.Minute, "/metrics counts c2's calls and refusals", func() error {
		body, err := get("http://" + metricsAddr + "/metrics")
		if err != nil {
			return err
		}
		for _, m := range []string{
			`weft_apiserver_remote_refused_total{cluster="c1",reason="method",remote="c2"}`,
			`weft_apiserver_remote_refused_total{cluster="c1",reason="range",remote="c2"}`,
			`weft_apiserver_remote_requests_total{cluster="c1",code="PermissionDenied",method="KV/Compact",remote="c2"} 1`,
			`weft_apiserver_remote_requests_total{cluster="c1",code="OK",method="KV/Range",remote="c2"}`,
			`weft_apiserver_remote_connections{cluster="c1",remote="c2"} 1`,
		} {
			if !contains(body, m) {
				return fmt.Errorf("no %s in /metrics", m)
			}
		}
		return nil
	})
}

// TestRemoteLimits: a remote cluster beyond its connection, watch or
// request-rate limit is refused, the refusals are counted by reason, and
// a freed connection or watch can be taken again.
func TestRemoteLimits(t *testing.T) {
	ctx := statetest.Context(t, 3*time.Minute)
	metricsAddr := freeAddr(t)
	_, _, remoteCfg := connected(t, func(cfg *apiserverConfig) {
		cfg.MetricsListen = metricsAddr
		cfg.RemoteLimits.MaxConnections, cfg.RemoteLimits.MaxWatches = 2, 3
		// Enough for what comes before the rate check, then (practically) nothing.
		cfg.RemoteLimits.RequestRate, cfg.RemoteLimits.RequestBurst = 0.001, 60
	})
	k := records.NewKeys(kvstore.DefaultPrefix)
	open := func() (*etcd.Client, error) { return etcd.New(ctx, remoteCfg, statetest.Logger(t)) }
	a, err := open()
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close(ctx)
	b, err := open()
	if err != nil {
		t.Fatal(err)
	}
	if c, err := open(); err == nil {
		c.Close(ctx)
		t.Error("a third connection with a limit of 2: accepted")
	}
	b.Close(ctx)
	statetest.Eventually(t, time.Minute, "a connection is accepted again once one closed", func() error {
		c, err := open()
		if err == nil {
			b = c
		}
		return err
	})
	defer b.Close(ctx)

	// Three watches on separate streams are the limit; a fourth is
	// refused until one ends.
	prefixes := []string{k.NodesPrefix("c1"), k.IPCachePrefix("c1"), k.ServicesPrefix("c1")}
	cancels := make([]context.CancelFunc, len(prefixes))
	for i, p := range prefixes {
		wctx, cancel := context.WithCancel(ctx)
		defer cancel()
		cancels[i] = cancel
		w := a.Raw().Watch(wctx, p, clientv3.WithPrefix(), clientv3.WithCreatedNotify())
		if wr := <-w; !wr.Created || wr.Canceled {
			t.Fatalf("watch %s: %+v", p, wr)
		}
	}
	fourth := a.Raw().Watch(ctx, k.IdentitiesPrefix(), clientv3.WithPrefix(), clientv3.WithCreatedNotify())
	if wr := <-fourth; !wr.Canceled || (wr.Err() == nil || !contains(wr.Err().Error(), "limit")) {
		t.Errorf("a fourth watch with a limit of 3: %+v, want canceled at the limit", wr)
	}
	cancels[0]()
	statetest.Eventually(t, time.Minute, "a watch is accepted again once one ended", func() error {
		wctx, cancel := context.WithCancel(ctx)
		w := a.Raw().Watch(wctx, k.IdentitiesPrefix(), clientv3.WithPrefix(), clientv3.WithCreatedNotify())
		wr := <-w
		if wr.Canceled {
			cancel()
			return fmt.Errorf("refused: %v", wr.Err())
		}
		t.Cleanup(cancel)
		return nil
	})

	// The burst is spent within a few dozen reads; then the remote is
	// refused with ResourceExhausted.
	var exhausted bool
	for i := 0; i < 100 && !exhausted; i++ {
		_, err := a.Raw().Get(ctx, kvstore.HeartbeatKey(kvstore.DefaultPrefix))
		exhausted = refusedAs(err, codes.ResourceExhausted)
	}
	if !exhausted {
		t.Error("100 reads with a burst of 60 and 0.001/s: never refused")
	}

	statetest.Eventually(t, time.Minute, "/metrics counts c2's refusals and watches", func() error {
		body, err := get("http://" + metricsAddr + "/metrics")
		if err != nil {
			return err
		}
		for _, reason := range []string{"connections", "watches", "rate"} {
			re := regexp.MustCompile(`weft_apiserver_remote_refused_total\{cluster="c1",reason="` + reason + `",remote="c2"\} (\d+)`)
			if n, _ := strconv.Atoi(valueOf(re.FindStringSubmatch(body))); n < 1 {
				return fmt.Errorf("no refusals for %s in /metrics", reason)
			}
		}
		if !contains(body, `weft_apiserver_remote_watches{cluster="c1",remote="c2"} 3`) {
			return fmt.Errorf("/metrics does not count the 3 watches c2 holds")
		}
		return nil
	})
}

func valueOf(m []string) string {
	if len(m) < 2 {
		return ""
	}
	return m[1]
}

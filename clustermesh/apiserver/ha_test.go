package apiserver_test

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/weftnet/weft/clustermesh/apiserver"
	"github.com/weftnet/weft/clustermesh/apiserver/apiservertest"
	"github.com/weftnet/weft/kvstore/etcdserver"
	"github.com/weftnet/weft/state/records"
	"github.com/weftnet/weft/state/statetest"
)

// TestHA: three apiservers of one cluster form one served etcd; a remote
// reading through the fronts of all of them keeps reading, and new records keep being
// mirrored, after one of them stops.
func TestHA(t *testing.T) {
	ctx := statetest.Context(t, 3*time.Minute)
	base := apiservertest.Start(t, "c1", 1, apiservertest.Options{NoServer: true})
	const n = 3
	cfgs := make([]apiserver.Config, n)
	var initial, endpoints []string
	for i := range cfgs {
		client, err1 := etcdserver.FreeURL("https")
		peer, err2 := etcdserver.FreeURL("https")
		front, err3 := etcdserver.FreeURL("https")
		if err := errors.Join(err1, err2, err3); err != nil {
			t.Fatal(err)
		}
		cfg := base.Cfg
		cfg.StoreName = fmt.Sprintf("m%d", i)
		cfg.StoreListen, cfg.StorePeerListen, cfg.RemoteListen = []string{client}, []string{peer}, []string{front}
		cfg.StoreDataDir = filepath.Join(t.TempDir(), "etcd")
		cfg.AdminListen = []string{"unix://" + base.Dir.Path(fmt.Sprintf("admin-%d.sock", i))}
		cfgs[i] = cfg
		initial = append(initial, cfg.StoreName+"="+peer)
		endpoints = append(endpoints, front)
	}
	servers := make([]*apiserver.Server, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range cfgs {
		cfgs[i].StoreInitialCluster = initial
		wg.Add(1)
		go func() {
			defer wg.Done()
			servers[i], errs[i] = apiserver.New(ctx, cfgs[i], statetest.Logger(t))
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("start 3 apiservers: %v", err)
	}
	stops := make([]func(), n)
	for i, s := range servers {
		rctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- s.Run(rctx) }()
		stops[i] = sync.OnceFunc(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("apiserver %d: %v", i, err)
			}
		})
		t.Cleanup(stops[i])
	}

	src := base.Store.NewClient(t)
	sk := records.NewKeys(src.Prefix())
	node := func(name string) {
		put(t, src, sk.Node("c1", name), &records.Node{Name: name, Cluster: "c1", ClusterID: 1, Underlay: []netip.Addr{netip.MustParseAddr("192.168.1.1")}})
	}
	node("n1")
	cert, key := remoteCreds(t, &apiservertest.Cluster{Name: "c1", Dir: base.Dir, Cfg: cfgs[1]}, "c2")
	rcfg := base.RemoteConfig(cert, key)
	rcfg.Endpoints = endpoints
	remote := servedWith(t, rcfg)
	k := records.NewKeys(remote.Prefix())
	sees := func(name string) func() error {
		return func() error {
			_, err := remote.Get(ctx, k.Node("c1", name))
			return err
		}
	}
	statetest.Eventually(t, time.Minute, "the remote reads n1 through the 3 apiservers", sees("n1"))
	stops[0]()
	node("n2")
	statetest.Eventually(t, time.Minute, "with one apiserver down, n2 is mirrored and read", sees("n2"))
}

package apiserver_test

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/weftnet/weft/api/adminapi"
	"github.com/weftnet/weft/clustermesh"
	"github.com/weftnet/weft/clustermesh/apiserver"
	"github.com/weftnet/weft/clustermesh/apiserver/apiservertest"
	"github.com/weftnet/weft/state/records"
	"github.com/weftnet/weft/state/statetest"
)

// withGlobal gives a cluster global addressing.
func withGlobal(cidr string) func(*apiserver.Config) {
	return func(c *apiserver.Config) { c.GlobalCIDR = cidr }
}

// meshState is everything a connect writes on one cluster: the keys under
// clustermesh/ in its store, the remote directories and the read-only
// users of its served store.
func meshState(t *testing.T, ctx context.Context, c *apiservertest.Cluster) []string {
	t.Helper()
	src := c.Store.NewClient(t)
	kvs, err := src.List(ctx, src.Prefix()+"clustermesh/")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, kv := range kvs {
		out = append(out, "key "+kv.Key)
	}
	ents, err := os.ReadDir(c.Dir.Path("remotes"))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	for _, e := range ents {
		out = append(out, "dir "+e.Name())
	}
	list, err := c.Admin(t).ListRemotes(ctx, &adminapi.ListRemotesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range list.Readers {
		out = append(out, "reader "+r)
	}
	for _, r := range list.Remotes {
		out = append(out, "remote "+r.Name)
	}
	return out
}

// TestConnectGlobalAddressing: through the real admin APIs, clusters that
// share a pod CIDR connect only when both have global addressing with
// disjoint global CIDRs; a refused connect names both clusters and ranges
// and writes nothing on either side. The global CIDR is in the cluster's
// Info and in its cluster-config record.
func TestConnectGlobalAddressing(t *testing.T) {
	ctx := statetest.Context(t, 2*time.Minute)
	root := t.TempDir()
	start := func(name string, id uint32, global string) (*apiservertest.Cluster, clustermesh.Target) {
		o := apiservertest.Options{Root: root, PodCIDR: "10.100.0.0/16"}
		if global != "" {
			o.Modify = withGlobal(global)
		}
		c := apiservertest.Start(t, name, id, o)
		tg, err := clustermesh.LoadTarget(root, name)
		if err != nil {
			t.Fatal(err)
		}
		return c, tg
	}
	c1, t1 := start("c1", 1, "242.1.0.0/16")
	c2, t2 := start("c2", 2, "")
	c3, t3 := start("c3", 3, "242.1.0.0/16")
	_, t4 := start("c4", 4, "242.4.0.0/16")
	step := func(f string, args ...any) { t.Logf(f, args...) }

	for _, tc := range []struct {
		name  string
		b     *apiservertest.Cluster
		bt    clustermesh.Target
		wants []string
	}{
		{"overlapping pods, c2 without global addressing", c2, t2,
			[]string{"connect c1 and c2", "pod CIDRs overlap (c1: 10.100.0.0/16, c2: 10.100.0.0/16)", "c2 has no global addressing"}},
		{"same global CIDR", c3, t3,
			[]string{"connect c1 and c3", "global CIDRs overlap (c1: 242.1.0.0/16, c3: 242.1.0.0/16)"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before1, beforeB := meshState(t, ctx, c1), meshState(t, ctx, tc.b)
			err := clustermesh.Connect(ctx, t1, tc.bt, step)
			if !errors.Is(err, clustermesh.ErrIncompatible) {
				t.Fatalf("connect: %v, want refused as incompatible", err)
			}
			for _, w := range tc.wants {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%v: want it to contain %q", err, w)
				}
			}
			if after := meshState(t, ctx, c1); strings.Join(after, ",") != strings.Join(before1, ",") {
				t.Errorf("c1 after the refused connect: %v, before %v", after, before1)
			}
			if after := meshState(t, ctx, tc.b); strings.Join(after, ",") != strings.Join(beforeB, ",") {
				t.Errorf("%s after the refused connect: %v, before %v", tc.b.Name, after, beforeB)
			}
			// The apiserver refuses it too when asked directly.
			info, err := tc.b.Admin(t).Info(ctx, &adminapi.InfoRequest{})
			if err != nil {
				t.Fatal(err)
			}
			creds, err := tc.b.Admin(t).SignRemote(ctx, &adminapi.SignRemoteRequest{Cluster: "c1"})
			if err != nil {
				t.Fatal(err)
			}
			_, err = c1.Admin(t).AddRemote(ctx, &adminapi.AddRemoteRequest{Remote: info, Credentials: creds})
			if status.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), tc.wants[1]) {
				t.Errorf("AddRemote of %s to c1: %v, want FailedPrecondition containing %q", tc.b.Name, err, tc.wants[1])
			}
			if after := meshState(t, ctx, c1); strings.Join(after, ",") != strings.Join(before1, ",") {
				t.Errorf("c1 after the refused AddRemote: %v, before %v", after, before1)
			}
			if _, err := tc.b.Admin(t).RemoveRemote(ctx, &adminapi.RemoveRemoteRequest{Cluster: "c1"}); err != nil {
				t.Fatal(err)
			}
		})
	}

	// c1 and c4 share the pod CIDR, both global, disjoint global CIDRs.
	if err := clustermesh.Connect(ctx, t1, t4, step); err != nil {
		t.Fatalf("connect c1 c4: %v", err)
	}
	st, err := clustermesh.Status(ctx, t1)
	if err != nil {
		t.Fatal(err)
	}
	if st.Info.GlobalCIDR.String() != "242.1.0.0/16" || len(st.Remotes) != 1 || st.Remotes[0].GlobalCIDR.String() != "242.4.0.0/16" {
		t.Fatalf("c1's status: %+v", st)
	}
	// A third cluster claiming c4's global CIDR is refused by c1, naming c4.
	c5, t5 := start("c5", 5, "242.4.0.0/16")
	before := meshState(t, ctx, c5)
	if err := clustermesh.Connect(ctx, t1, t5, step); err == nil || !strings.Contains(err.Error(), "global CIDRs overlap (c5: 242.4.0.0/16, c4: 242.4.0.0/16)") || !strings.Contains(err.Error(), "c4 is connected to c1") {
		t.Fatalf("connect c1 c5: %v, want refused naming c4 and c5", err)
	}
	if after := meshState(t, ctx, c5); strings.Join(after, ",") != strings.Join(before, ",") {
		t.Errorf("c5 after the refused connect: %v, before %v", after, before)
	}
	// The cluster-config record carries the global CIDR, in the cluster
	// store and in the served store remote clusters read.
	for _, c := range []struct {
		name string
		cfg  records.ClusterConfig
	}{{"cluster store", clusterConfig(t, ctx, c1, false)}, {"served store", clusterConfig(t, ctx, c1, true)}} {
		if c.cfg.GlobalCIDR != netip.MustParsePrefix("242.1.0.0/16") || len(c.cfg.ServiceCIDRs) != 1 {
			t.Errorf("cluster-config/c1 in the %s: %+v", c.name, c.cfg)
		}
	}
	// c1's apiserver, restarted with another global CIDR while c1 and c4
	// are connected, refuses to start, naming c4 and what to do, and
	// leaves the record as it was; with the old one it starts again.
	c1.Stop()
	changed := c1.Cfg
	changed.GlobalCIDR = "242.9.0.0/16"
	srv, err := apiserver.New(ctx, changed, statetest.Logger(t))
	if err == nil {
		stopped, cancel := context.WithCancel(ctx)
		cancel()
		_ = srv.Run(stopped) // closes it
		t.Fatal("c1's apiserver started with a new global CIDR while connected to c4")
	}
	for _, w := range []string{"--global-cidr 242.9.0.0/16", "c1 has the global CIDR 242.1.0.0/16", "connected to c4", "disconnect first"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("%v: want it to contain %q", err, w)
		}
	}
	if cc := clusterConfig(t, ctx, c1, false); cc.GlobalCIDR != netip.MustParsePrefix("242.1.0.0/16") {
		t.Errorf("cluster-config/c1 after the refused start: %+v", cc)
	}
	c1.Restart(t)
}

func clusterConfig(t *testing.T, ctx context.Context, c *apiservertest.Cluster, inServed bool) records.ClusterConfig {
	t.Helper()
	cl := c.Store.NewClient(t)
	if inServed {
		cl = served(t, c, c.Dir.Cert(clustermesh.UserRoot), c.Dir.Key(clustermesh.UserRoot))
	}
	k := records.NewKeys(cl.Prefix())
	kv, err := cl.Get(ctx, k.ClusterConfig(c.Name))
	if err != nil {
		t.Fatal(err)
	}
	cc, err := k.DecodeClusterConfig(kv.Key, kv.Value)
	if err != nil {
		t.Fatal(err)
	}
	return cc
}

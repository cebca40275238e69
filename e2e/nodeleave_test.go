package e2e

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/weftnet/weft/api/agentapi"
	"github.com/weftnet/weft/kvstore"
	"github.com/weftnet/weft/kvstore/dial"
	"github.com/weftnet/weft/state/records"
	"github.com/weftnet/weft/testenv"
)

// TestNodeLeave: when a node's agent dies (kill -9, so nothing is cleaned
// up on the way out), its node and ipcache entries vanish from the store
// once its lease expires, and from every other node's BPF ipcache.
// A graceful stop (SIGTERM) revokes the lease at once.
func TestNodeLeave(t *testing.T) {
	for _, tc := range []struct {
		store string
		sig   syscall.Signal
		ttl   time.Duration
	}{
		{testenv.StoreEtcd, syscall.SIGKILL, 5 * time.Second},
		{testenv.StoreConsul, syscall.SIGKILL, 10 * time.Second}, // Consul's minimum session TTL
		{testenv.StoreEtcd, syscall.SIGTERM, 5 * time.Second},
	} {
		t.Run(tc.store+"/"+strings.ToLower(unix.SignalName(tc.sig)), func(t *testing.T) {
			spec := testenv.DefaultSpec()
			spec.Nodes, spec.KVStore, spec.LeaseTTL = 3, tc.store, tc.ttl
			e := up(t, "leave-"+tc.store[:3], spec)
			nodeLeave(t, e, tc.ttl, tc.sig)
		})
	}
}

func nodeLeave(t *testing.T, e *testenv.Env, ttl time.Duration, sig syscall.Signal) {
	ctx := context.Background()
	var pods []testenv.Pod
	for _, n := range e.Nodes {
		p, err := e.AddPod(ctx, testenv.PodSpec{Name: "p-" + n.Name, Node: n.Name})
		if err != nil {
			t.Fatal(err)
		}
		pods = append(pods, p)
	}
	gone, leaving := e.Nodes[2], pods[2]
	cfg := kvstore.DefaultConfig()
	cfg.Backend, cfg.Endpoints = e.KVStore, e.Clusters[0].HostStoreEndpoints
	if e.KVStore == kvstore.BackendConsul {
		cfg.LeaseTTL = 10 * time.Second
	}
	kv, err := dial.Open(ctx, cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("open the environment's store from the host: %v", err)
	}
	defer kv.Close(ctx)
	keys := records.NewKeys(kv.Prefix())
	storeKeys := []string{keys.Node(gone.Cluster, gone.Name), keys.IPCache(gone.Cluster, leaving.Addr())}

	// Before: the store and every other node know the leaving node's pod.
	eventually(t, time.Minute, "leaving node's keys in the store", func() error {
		for _, k := range storeKeys {
			if _, err := kv.Get(ctx, k); err != nil {
				return err
			}
		}
		return nil
	})
	for _, n := range e.Nodes[:2] {
		eventually(t, time.Minute, "pod "+leaving.IP+" in the BPF ipcache of "+n.Name, func() error {
			rows, err := bpfIPCache(ctx, e, n.Name, leaving.IP, gone.IP)
			if err == nil && len(rows) == 0 {
				err = fmt.Errorf("no row for %s", leaving.IP)
			}
			return err
		})
	}

	if err := e.StopAgent(ctx, gone.Name, sig); err != nil {
		t.Fatal(err)
	}
	// Within the lease TTL, with room for Consul doubling it and for the
	// watch to deliver: a deadline, not a timing assertion.
	deadline := 3*ttl + 15*time.Second
	eventually(t, deadline, "leaving node's keys gone from the store", func() error {
		for _, k := range storeKeys {
			if _, err := kv.Get(ctx, k); err == nil {
				return fmt.Errorf("%s still there", k)
			}
		}
		return nil
	})
	for _, n := range e.Nodes[:2] {
		eventually(t, deadline, "node "+gone.Name+" gone from "+n.Name, func() error {
			rows, err := bpfIPCache(ctx, e, n.Name, leaving.IP, gone.IP)
			if err != nil {
				return err
			}
			if len(rows) > 0 {
				return fmt.Errorf("BPF ipcache still holds %v", rows)
			}
			a, closeFn, err := e.Agent(ctx, n.Name)
			if err != nil {
				return err
			}
			defer closeFn()
			nodes, err := a.ListNodes(ctx, &agentapi.ListNodesRequest{})
			if err != nil {
				return err
			}
			for _, nd := range nodes.Nodes {
				if nd.Name == gone.Name {
					return fmt.Errorf("ListNodes still lists %s", gone.Name)
				}
			}
			return nil
		})
	}
	// The others still reach each other.
	waitReachable(t, e, pods[0], pods[1])
}

// bpfIPCache returns the rows of node's BPF ipcache whose prefix is ip/32
// or whose tunnel endpoint is tunnel.
func bpfIPCache(ctx context.Context, e *testenv.Env, node, ip, tunnel string) ([]string, error) {
	a, closeFn, err := e.Agent(ctx, node)
	if err != nil {
		return nil, err
	}
	defer closeFn()
	tab, err := a.DumpBPF(ctx, &agentapi.DumpBPFRequest{Map: "ipcache"})
	if err != nil {
		return nil, err
	}
	tep := slices.Index(tab.Columns, "TUNNEL ENDPOINT")
	var out []string
	for _, r := range tab.Rows {
		if len(r.Cells) == 0 {
			continue
		}
		if r.Cells[0] == ip+"/32" || (tep >= 0 && tep < len(r.Cells) && r.Cells[tep] == tunnel) {
			out = append(out, strings.Join(r.Cells, " "))
		}
	}
	return out, nil
}

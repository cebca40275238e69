package endpoints

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/weftnet/weft/api/agentapi"
	"github.com/weftnet/weft/datapath"
	"github.com/weftnet/weft/k8s/k8stest"
	"github.com/weftnet/weft/k8s/podlabels"
	"github.com/weftnet/weft/kvstore/kvstoretest"
	"github.com/weftnet/weft/state/identity"
	"github.com/weftnet/weft/state/records"
	"github.com/weftnet/weft/state/statetest"
)

// recorder is the datapath and the ipcache publisher of a relabel test:
// it keeps each address's identity as they were last told.
type recorder struct {
	mu        sync.Mutex
	dp, pub   map[netip.Addr]records.ID
	failing   bool // refuse every endpoint change until cleared
	released  []string
	allocator *identity.Allocator
}

func (r *recorder) UpsertEndpoint(_ context.Context, ep datapath.Endpoint) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.failing {
		return errors.New("injected datapath failure")
	}
	r.dp[ep.IP] = records.ID(ep.Identity)
	return nil
}
func (r *recorder) DeleteEndpoint(context.Context, netip.Addr) error   { return nil }
func (r *recorder) PruneEndpoints(context.Context, []netip.Addr) error { return nil }
func (r *recorder) Publish(e records.IPCacheEntry) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.pub[e.IP] = e.Identity
	return nil
}
func (r *recorder) Withdraw(netip.Addr) {}

func (r *recorder) Allocate(ctx context.Context, l records.Labels) (records.ID, error) {
	return r.allocator.Allocate(ctx, l)
}
func (r *recorder) Release(ctx context.Context, l records.Labels) (bool, error) {
	r.mu.Lock()
	r.released = append(r.released, l.String())
	r.mu.Unlock()
	return r.allocator.Release(ctx, l)
}

// seen returns what the datapath and the publisher were last told of ip.
func (r *recorder) seen(ip netip.Addr) (dp, pub records.ID) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.dp[ip], r.pub[ip]
}

// TestFollowLabels: when a pod's mirrored labels or its namespace's
// change, its endpoint gets the identity of the new labels in the
// datapath, the ipcache and its saved state, the old identity is released,
// the CNI plugin's labels stay, and a failed change leaves the old
// identity everywhere.
func TestFollowLabels(t *testing.T) {
	store := kvstoretest.StartEtcd(t).NewClient(t, statetest.Unlimited)
	ctx := statetest.Context(t, 2*time.Minute)
	keys := records.NewKeys(store.Prefix())
	put := func(key string, rec records.Record) { k8stest.Put(t, store, key, rec) }
	icfg := identity.DefaultConfig()
	icfg.Cluster, icfg.ClusterID, icfg.Node = "c1", 1, "n1"
	alloc, err := identity.New(store, icfg, statetest.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	statetest.Go(t, alloc.Run)
	rec := &recorder{dp: map[netip.Addr]records.ID{}, pub: map[netip.Addr]records.ID{}, allocator: alloc}
	dir := t.TempDir()
	m := New(Config{Dir: dir, Node: "n1", Cluster: "c1", NodeIP: netip.MustParseAddr("192.168.0.1"),
		PodCIDR: netip.MustParsePrefix("10.100.1.0/24")}, rec, rec, rec, statetest.Logger(t))
	m.SetHooks(fakePolicy{}, func() {})
	m.SetPodLabels(podlabels.New(store, "c1"), time.Second)

	put(keys.Synced("c1", records.KindK8sPods), &records.Synced{Time: time.Now()})
	put(keys.Namespace("c1", "dev"), &records.Namespace{Cluster: "c1", Name: "dev", Labels: map[string]string{"team": "a"}})
	pod := func(labels map[string]string) {
		put(keys.Pod("c1", "dev", "web-1"), &records.Pod{Cluster: "c1", Namespace: "dev", Name: "web-1", Labels: labels})
	}
	pod(map[string]string{"app": "web"})
	ep, err := m.Create(ctx, &agentapi.CreateEndpointRequest{ContainerId: "c-web", Ifname: "eth0", HostIfname: "lo",
		PodMac: "02:00:00:00:00:01", Namespace: "dev", PodName: "web-1", Labels: map[string]string{"from-cni": "x"}})
	if err != nil {
		t.Fatal(err)
	}
	first := ep.Identity
	statetest.Go(t, m.FollowLabels)

	// expect waits until the endpoint has an identity other than old whose
	// labels contain want and lack notWant, everywhere it is recorded.
	expect := func(what string, old records.ID, want, notWant string) records.ID {
		t.Helper()
		var id records.ID
		statetest.Eventually(t, 20*time.Second, what, func() error {
			cur := m.List()[0]
			id = cur.Identity
			ls := cur.IdentityLabels.String()
			if id == old || !strings.Contains(ls, want) || (notWant != "" && strings.Contains(ls, notWant)) || !strings.Contains(ls, "k8s:from-cni=x") {
				return fmt.Errorf("endpoint has identity %v with labels %s", id, ls)
			}
			if dp, pub := rec.seen(cur.IP); dp != id || pub != id {
				return fmt.Errorf("datapath has identity %v and the ipcache %v, want %v", dp, pub, id)
			}
			saved, err := readEndpoint(m.path(cur))
			if err != nil || saved.Identity != id {
				return fmt.Errorf("saved state: %v, %v", saved, err)
			}
			if got, ok := alloc.Lookup(id); !ok || got.String() != ls {
				return fmt.Errorf("identity %v is %v in the store, want %s", id, got, ls)
			}
			return nil
		})
		return id
	}
	released := func(match func(string) bool) bool {
		rec.mu.Lock()
		defer rec.mu.Unlock()
		return slices.ContainsFunc(rec.released, match)
	}

	firstLabels := ep.IdentityLabels.String()
	pod(map[string]string{"app": "web", "tier": "front"})
	second := expect("a pod label added", first, "k8s:tier=front", "")
	if !released(func(l string) bool { return l == firstLabels }) {
		t.Errorf("the old identity %v (%s) was not released", first, firstLabels)
	}

	put(keys.Namespace("c1", "dev"), &records.Namespace{Cluster: "c1", Name: "dev", Labels: map[string]string{"team": "b"}})
	third := expect("the namespace relabelled", second, "k8s:io.cilium.k8s.namespace.labels.team=b", "team=a")

	pod(map[string]string{"app": "web"})
	fourth := expect("a pod label removed", third, "k8s:app=web", "tier=front")

	// A change the datapath refuses leaves the old identity everywhere. It
	// keeps refusing until the check: another event for the pod may retry
	// the change at any time.
	rec.mu.Lock()
	rec.failing = true
	rec.mu.Unlock()
	pod(map[string]string{"app": "web", "tier": "back"})
	statetest.Eventually(t, 20*time.Second, "the failed relabel's identity released", func() error {
		if !released(func(l string) bool { return strings.Contains(l, "k8s:tier=back") }) {
			return errors.New("not yet")
		}
		return nil
	})
	cur := m.List()[0]
	if dp, pub := rec.seen(cur.IP); cur.Identity != fourth || dp != fourth || pub != fourth || strings.Contains(cur.IdentityLabels.String(), "tier") {
		t.Errorf("after a failed relabel: endpoint %v (%s), datapath %v, ipcache %v; want %v everywhere", cur.Identity, cur.IdentityLabels, dp, pub, fourth)
	}
}

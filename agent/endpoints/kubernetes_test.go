package endpoints

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/weftnet/weft/api/agentapi"
	"github.com/weftnet/weft/datapath"
	"github.com/weftnet/weft/k8s/k8stest"
	"github.com/weftnet/weft/k8s/podlabels"
	"github.com/weftnet/weft/kvstore/kvstoretest"
	"github.com/weftnet/weft/state/records"
	"github.com/weftnet/weft/state/statetest"
)

// Fakes for what Create calls besides the store: the test is about which
// labels the identity gets.
type fakeIDs struct{ got []records.Labels }

func (f *fakeIDs) Allocate(_ context.Context, l records.Labels) (records.ID, error) {
	f.got = append(f.got, l)
	return records.ClusterIdentity(1, 256), nil
}
func (f *fakeIDs) Release(context.Context, records.Labels) (bool, error) { return true, nil }

type fakeDP struct{}

func (fakeDP) UpsertEndpoint(context.Context, datapath.Endpoint) error { return nil }
func (fakeDP) DeleteEndpoint(context.Context, netip.Addr) error        { return nil }
func (fakeDP) PruneEndpoints(context.Context, []netip.Addr) error      { return nil }

type fakePub struct{}

func (fakePub) Publish(records.IPCacheEntry) error { return nil }
func (fakePub) Withdraw(netip.Addr)                {}

type fakePolicy struct{}

func (fakePolicy) EndpointChanged(context.Context, *Endpoint) error { return nil }
func (fakePolicy) EndpointDeleted(uint16)                           {}

// TestCreateTakesKubernetesLabels: in a cluster whose Kubernetes source
// mirrors pods, a named pod's identity gets its Kubernetes labels and its
// namespace's; a pod never mirrored fails with a retryable error naming
// it; without the source the CNI plugin's labels stay.
func TestCreateTakesKubernetesLabels(t *testing.T) {
	store := kvstoretest.StartEtcd(t).NewClient(t, statetest.Unlimited)
	ctx := statetest.Context(t, time.Minute)
	keys := records.NewKeys(store.Prefix())
	put := func(key string, rec records.Record) { k8stest.Put(t, store, key, rec) }
	ids := &fakeIDs{}
	m := New(Config{Dir: t.TempDir(), Node: "n1", Cluster: "c1", NodeIP: netip.MustParseAddr("192.168.0.1"),
		PodCIDR: netip.MustParsePrefix("10.100.1.0/24")}, ids, fakeDP{}, fakePub{}, statetest.Logger(t))
	m.SetHooks(fakePolicy{}, func() {})
	m.SetPodLabels(podlabels.New(store, "c1"), time.Second)
	req := func(container, pod string) *agentapi.CreateEndpointRequest {
		return &agentapi.CreateEndpointRequest{ContainerId: container, Ifname: "eth0", HostIfname: "lo", PodMac: "02:00:00:00:00:01",
			Namespace: "dev", PodName: pod, Labels: map[string]string{"from-cni": "x"}}
	}

	if _, err := m.Create(ctx, req("c-standalone", "web-0")); err != nil {
		t.Fatalf("standalone: %v", err)
	}
	want := "k8s:from-cni=x;k8s:io.cilium.k8s.policy.cluster=c1;k8s:io.kubernetes.pod.namespace=dev"
	if got := ids.got[len(ids.got)-1].String(); got != want {
		t.Errorf("standalone labels %q, want %q", got, want)
	}

	put(keys.Synced("c1", records.KindK8sPods), &records.Synced{Time: time.Now()})
	put(keys.Namespace("c1", "dev"), &records.Namespace{Cluster: "c1", Name: "dev", Labels: map[string]string{"team": "a"}})
	put(keys.Pod("c1", "dev", "web-1"), &records.Pod{Cluster: "c1", Namespace: "dev", Name: "web-1", Labels: map[string]string{"app": "web"}})
	if _, err := m.Create(ctx, req("c-k8s", "web-1")); err != nil {
		t.Fatalf("kubernetes: %v", err)
	}
	want = "k8s:app=web;k8s:from-cni=x;k8s:io.cilium.k8s.namespace.labels.team=a;k8s:io.cilium.k8s.policy.cluster=c1;k8s:io.kubernetes.pod.namespace=dev"
	if got := ids.got[len(ids.got)-1].String(); got != want {
		t.Errorf("kubernetes labels %q, want %q", got, want)
	}

	_, err := m.Create(ctx, req("c-ghost", "ghost"))
	if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "dev/ghost") {
		t.Fatalf("unmirrored pod: %v, want ErrUnavailable naming dev/ghost", err)
	}
}

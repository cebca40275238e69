package k8s_test

import (
	"context"
	"fmt"
	"maps"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/weftnet/weft/k8s/k8stest"
	"github.com/weftnet/weft/kvstore"
	"github.com/weftnet/weft/state/records"
	"github.com/weftnet/weft/state/statetest"
)

// mirrored lists every record under the mirrored prefixes with its revision.
func mirrored(t *testing.T, store kvstore.Client) map[string]uint64 {
	t.Helper()
	out := map[string]uint64{}
	for _, p := range []string{keys.NamespacesPrefix(cluster), keys.PodsPrefix(cluster), keys.ServicesPrefix(cluster), keys.PoliciesPrefix()} {
		kvs, err := store.List(context.Background(), p)
		if err != nil {
			t.Fatal(err)
		}
		for _, kv := range kvs {
			out[kv.Key] = kv.Revision
		}
	}
	return out
}

// TestRestartPrunes: objects deleted while no source ran vanish from the
// store when one starts again, new ones appear, and records the CLI wrote
// are left alone.
func TestRestartPrunes(t *testing.T) {
	c, store := setup(t)
	ctx := statetest.Context(t, 5*time.Minute)
	cs := c.Client
	cliSvc := keys.Service(cluster, "default", "from-cli")
	k8stest.Put(t, store, cliSvc, &records.Service{Cluster: cluster, Namespace: "default", Name: "from-cli", Type: records.ServiceClusterIP,
		Frontends: nil, Ports: []records.ServicePort{{Port: 80, TargetPort: 80, Protocol: "TCP"}}, Source: "cli"})

	start := time.Now()
	a := startSource(t, c, store, "a")
	waitSynced(t, store, start)
	if _, err := cs.CoreV1().Pods("default").Create(ctx, pod("default", "p1", map[string]string{"app": "web"}), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.CoreV1().Services("default").Create(ctx, service("default", "s1", nil), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.NetworkingV1().NetworkPolicies("default").Create(ctx, netpol("default", "np1", 80), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{keys.Pod(cluster, "default", "p1"), keys.Service(cluster, "default", "s1"), keys.Policy("default", "np1")} {
		statetest.Eventually(t, timeout, "record "+key, func() error {
			_, err := store.Get(ctx, key)
			return err
		})
	}
	a.stop()

	deletePod(t, c, "default", "p1")
	if err := cs.CoreV1().Services("default").Delete(ctx, "s1", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := cs.NetworkingV1().NetworkPolicies("default").Delete(ctx, "np1", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.CoreV1().Pods("default").Create(ctx, pod("default", "p2", nil), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	restart := time.Now()
	startSource(t, c, store, "a")
	waitSynced(t, store, restart)
	for _, key := range []string{keys.Pod(cluster, "default", "p1"), keys.Service(cluster, "default", "s1"), keys.Policy("default", "np1")} {
		assertAbsent(t, store, key)
	}
	if _, err := store.Get(ctx, keys.Pod(cluster, "default", "p2")); err != nil {
		t.Errorf("pod created while down: %v", err)
	}
	if _, err := store.Get(ctx, cliSvc); err != nil {
		t.Errorf("the CLI's service record was pruned: %v", err)
	}
}

// TestLeaderFailover: of two sources one mirrors; when it stops the other
// takes over without rewriting any record, and mirrors what changes next.
func TestLeaderFailover(t *testing.T) {
	c, store := setup(t)
	ctx := statetest.Context(t, 5*time.Minute)
	cs := c.Client
	if _, err := cs.CoreV1().Namespaces().Create(ctx, namespace("dev", map[string]string{"team": "a"}), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.CoreV1().Pods("dev").Create(ctx, pod("dev", "p1", map[string]string{"app": "web"}), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.CoreV1().Services("dev").Create(ctx, service("dev", "web", map[string]string{"service.cilium.io/global": "true"}), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.DiscoveryV1().EndpointSlices("dev").Create(ctx, endpointSlice("dev", "web-1", "web", "10.100.1.5"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.NetworkingV1().NetworkPolicies("dev").Create(ctx, netpol("dev", "np", 80), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	start := time.Now()
	srcs := map[string]*running{"a": startSource(t, c, store, "a"), "b": startSource(t, c, store, "b")}
	waitSynced(t, store, start)
	var leader, standby string
	statetest.Eventually(t, timeout, "one leader", func() error {
		var leaders []string
		for id, r := range srcs {
			if r.src.Status().Leader {
				leaders = append(leaders, id)
			}
		}
		if len(leaders) != 1 {
			return fmt.Errorf("leaders %v", leaders)
		}
		leader = leaders[0]
		return nil
	})
	standby = map[string]string{"a": "b", "b": "a"}[leader]
	before := mirrored(t, store)
	if len(before) < 5 { // default, kube-system, ... namespaces too
		t.Fatalf("only %d records mirrored: %v", len(before), before)
	}

	stopped := time.Now()
	srcs[leader].stop()
	statetest.Eventually(t, timeout, standby+" leads", func() error {
		if !srcs[standby].src.Status().Leader {
			return fmt.Errorf("not leader; holder %q", srcs[standby].src.Status().Holder)
		}
		return nil
	})
	waitSynced(t, store, stopped)
	if after := mirrored(t, store); !maps.Equal(before, after) {
		t.Errorf("the new leader rewrote records:\nbefore %v\nafter  %v", before, after)
	}
	if _, err := cs.CoreV1().Pods("dev").Create(ctx, pod("dev", "p2", nil), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitRecord(t, store, keys.Pod(cluster, "dev", "p2"), records.Keys.DecodePod, func(records.Pod) error { return nil })
}

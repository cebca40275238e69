package k8s_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/weftnet/weft/k8s"
	"github.com/weftnet/weft/kvstore"
	"github.com/weftnet/weft/state/records"
	"github.com/weftnet/weft/state/statetest"
)

const l7Doc = `apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: l7
  namespace: default
spec:
  endpointSelector:
    matchLabels:
      app: web
  ingress:
  - toPorts:
    - ports:
      - port: "9092"
        protocol: TCP
      rules:
        kafka:
        - topic: orders
`

// TestBadObjects: objects that cannot be mirrored get a Warning Event and
// a status problem, and change nothing in the store; a bad update keeps
// the last good record; fixing the object clears the problem.
func TestBadObjects(t *testing.T) {
	c, store := setup(t)
	ctx := statetest.Context(t, 5*time.Minute)
	cs := c.Client
	src := startSynced(t, c, store)

	t.Run("invalid affinity annotation", func(t *testing.T) {
		if _, err := cs.CoreV1().Services("default").Create(ctx, service("default", "closest", map[string]string{"service.cilium.io/affinity": "closest"}), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		waitProblem(t, c, src, "Service", "default", "closest", `"closest": accepted are none, local and remote`)
		assertAbsent(t, store, keys.Service(cluster, "default", "closest"))
		// Agents read the source's status from the store (weft status):
		// every kind synced, and the problem named.
		waitRecord(t, store, keys.KubernetesSource(cluster), records.Keys.DecodeKubernetesSource, func(r records.KubernetesSource) error {
			if len(r.Kinds) < 4 || r.Holder == "" {
				return fmt.Errorf("status record %+v: want the holder and the 4 kinds", r)
			}
			for kind, k := range r.Kinds {
				if !k.Synced {
					return fmt.Errorf("kind %s not synced in %+v", kind, r)
				}
			}
			if r.ProblemCount < 1 || !slices.ContainsFunc(r.Problems, func(p string) bool {
				return strings.HasPrefix(p, "Service default/closest: ") && strings.Contains(p, `"closest"`)
			}) {
				return fmt.Errorf("problems %d %q: want Service default/closest", r.ProblemCount, r.Problems)
			}
			return nil
		})
	})

	t.Run("bad update keeps the last good record", func(t *testing.T) {
		svc, err := cs.CoreV1().Services("default").Create(ctx, service("default", "web", map[string]string{"service.cilium.io/global": "true"}), metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		key := keys.Service(cluster, "default", "web")
		waitRecord(t, store, key, records.Keys.DecodeService, func(r records.Service) error {
			if !r.Global {
				return fmt.Errorf("not global")
			}
			return nil
		})
		svc.Annotations["service.cilium.io/global"] = "yes"
		if svc, err = cs.CoreV1().Services("default").Update(ctx, svc, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		waitProblem(t, c, src, "Service", "default", "web", `"yes": accepted are "true" and "false"`)
		if r := waitRecord(t, store, key, records.Keys.DecodeService, func(records.Service) error { return nil }); !r.Global {
			t.Errorf("the bad update changed the record: %+v", r)
		}
		svc.Annotations["service.cilium.io/global"] = "false"
		if _, err = cs.CoreV1().Services("default").Update(ctx, svc, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		waitRecord(t, store, key, records.Keys.DecodeService, func(r records.Service) error {
			if r.Global {
				return fmt.Errorf("still global")
			}
			return nil
		})
		statetest.Eventually(t, timeout, "problem cleared", func() error { return noProblem(src, "Service", "default", "web") })
	})

	t.Run("endpointslice of an unknown service", func(t *testing.T) {
		if _, err := cs.DiscoveryV1().EndpointSlices("default").Create(ctx, endpointSlice("default", "orphan-1", "orphan", "10.100.1.9"), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		waitProblem(t, c, src, "EndpointSlice", "default", "orphan-1", "Service default/orphan, which does not exist")
		assertAbsent(t, store, keys.Service(cluster, "default", "orphan"))
		if _, err := cs.CoreV1().Services("default").Create(ctx, service("default", "orphan", nil), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		waitRecord(t, store, keys.Service(cluster, "default", "orphan"), records.Keys.DecodeService, func(r records.Service) error {
			if len(r.Backends) != 1 {
				return fmt.Errorf("backends %v, want the slice's one", r.Backends)
			}
			return nil
		})
		statetest.Eventually(t, timeout, "problem cleared", func() error { return noProblem(src, "EndpointSlice", "default", "orphan-1") })
	})

	t.Run("unenforceable policy", func(t *testing.T) {
		if _, err := c.Dynamic.Resource(k8s.GVRCiliumNetworkPolicy).Namespace("default").Create(ctx, cilium(t, l7Doc), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		waitProblem(t, c, src, "CiliumNetworkPolicy", "default", "l7", "not supported")
		assertAbsent(t, store, keys.Policy("default", "l7"))
	})

	t.Run("pod with more labels than an identity holds", func(t *testing.T) {
		labels := map[string]string{}
		for i := range records.MaxPodLabels + 1 {
			labels[fmt.Sprintf("l%d", i)] = "v"
		}
		if _, err := cs.CoreV1().Pods("default").Create(ctx, pod("default", "labelled", labels), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		waitProblem(t, c, src, "Pod", "default", "labelled", fmt.Sprintf("an identity holds at most %d", records.MaxPodLabels))
		assertAbsent(t, store, keys.Pod(cluster, "default", "labelled"))
	})
}

// assertAbsent checks key is not in the store (called after the problem
// was reported, so the source has processed the object).
func assertAbsent(t *testing.T, store kvstore.Client, key string) {
	t.Helper()
	if kv, err := store.Get(context.Background(), key); !errors.Is(err, kvstore.ErrNotFound) {
		t.Errorf("%s: want no record, got %s (%v)", key, kv.Value, err)
	}
}

package services

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/weftnet/weft/kvstore"
	"github.com/weftnet/weft/kvstore/kvstoretest"
	"github.com/weftnet/weft/state/records"
	"github.com/weftnet/weft/state/statetest"
)

const cluster = "c1"

func webService() records.Service {
	no := false
	return records.Service{Namespace: "default", Name: "web", Type: records.ServiceClusterIP,
		Frontends: []netip.Addr{netip.MustParseAddr("10.96.0.10")},
		Ports:     []records.ServicePort{{Name: "http", Port: 80, TargetPort: 8080, Protocol: records.ProtoTCP}},
		Selector:  map[string]string{"app": "web"},
		Global:    true, Shared: &no, Affinity: records.ClusterAffinityLocal,
		SessionAffinity: records.AffinityClientIP, SessionAffinityTimeout: 600, Source: "cli"}
}

// put writes a record straight into the store (what agents publish).
func put(t testing.TB, c kvstore.Client, key string, r records.Record) {
	t.Helper()
	val, err := records.Encode(key, r)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Update(context.Background(), key, val); err != nil {
		t.Fatal(err)
	}
}

// TestServiceBackendsFollowEndpoints: a service created from the CLI keeps
// its settings as given; its backends are the cluster's endpoints whose
// labels match the selector in its namespace, on whichever node; they follow
// endpoints appearing and vanishing and selector changes; a deleted service
// is gone.
func TestServiceBackendsFollowEndpoints(t *testing.T) {
	statetest.Each(t, func(t *testing.T, s kvstoretest.Server) {
		ctx := statetest.Context(t, 2*time.Minute)
		c := s.NewClient(t)
		keys := records.NewKeys(c.Prefix())
		web := records.ClusterIdentity(1, 300)
		webOther := records.ClusterIdentity(1, 301)
		db := records.ClusterIdentity(1, 302)
		for id, ls := range map[records.ID][]string{
			web:      {"k8s:app=web", "k8s:io.kubernetes.pod.namespace=default"},
			webOther: {"k8s:app=web", "k8s:io.kubernetes.pod.namespace=other"},
			db:       {"k8s:app=db", "k8s:io.kubernetes.pod.namespace=default"},
		} {
			put(t, c, keys.Identity(id), &records.Identity{ID: id, Labels: records.MustParseLabels(ls...)})
		}
		for i, n := range []string{"node-a", "node-b"} {
			put(t, c, keys.Node(cluster, n), &records.Node{Name: n, Cluster: cluster, ClusterID: 1,
				Underlay: []netip.Addr{netip.AddrFrom4([4]byte{192, 168, 0, byte(10 + i)})}})
		}
		pod := func(i int, id records.ID, host byte) records.IPCacheEntry {
			return records.IPCacheEntry{IP: netip.AddrFrom4([4]byte{10, 100, 0, byte(i)}), Identity: id,
				HostIP: netip.AddrFrom4([4]byte{192, 168, 0, host})}
		}
		for _, e := range []records.IPCacheEntry{pod(1, web, 10), pod(2, web, 11), pod(3, webOther, 10), pod(4, db, 11)} {
			put(t, c, keys.IPCache(cluster, e.IP), &e)
		}

		store, err := NewStore(c, cluster, statetest.Logger(t))
		if err != nil {
			t.Fatal(err)
		}
		if err := store.Create(ctx, webService()); err != nil {
			t.Fatal(err)
		}
		if err := store.Create(ctx, webService()); !errors.Is(err, kvstore.ErrExists) {
			t.Fatalf("second Create = %v, want ErrExists", err)
		}
		ctrl, err := NewController(s.NewClient(t), cluster, statetest.Logger(t))
		if err != nil {
			t.Fatal(err)
		}
		statetest.Go(t, ctrl.Run)

		waitBackends := func(what string, want ...string) {
			t.Helper()
			statetest.Eventually(t, 30*time.Second, what, func() error {
				svc, _, err := store.Get(ctx, "default", "web")
				if err != nil {
					return err
				}
				var got []string
				for _, b := range svc.Backends {
					got = append(got, fmt.Sprintf("%v:%d@%s", b.IP, b.Port, b.Node))
				}
				if !slices.Equal(got, want) {
					return fmt.Errorf("backends %v, want %v", got, want)
				}
				return nil
			})
		}
		waitBackends("backends of the matching pods", "10.100.0.1:8080@node-a", "10.100.0.2:8080@node-b")

		svc, _, err := store.Get(ctx, "default", "web")
		if err != nil {
			t.Fatal(err)
		}
		if !svc.Global || svc.IsShared() || svc.Affinity != records.ClusterAffinityLocal || svc.SessionAffinityTimeout != 600 {
			t.Fatalf("service settings not stored as given: %+v", svc)
		}

		e := pod(5, web, 10)
		put(t, c, keys.IPCache(cluster, e.IP), &e)
		if err := c.Delete(ctx, keys.IPCache(cluster, pod(1, web, 10).IP)); err != nil {
			t.Fatal(err)
		}
		waitBackends("backends follow pods", "10.100.0.2:8080@node-b", "10.100.0.5:8080@node-a")

		if _, err := store.Update(ctx, "default", "web", func(s *records.Service) error {
			s.Selector = map[string]string{"app": "db"}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		waitBackends("backends follow the selector", "10.100.0.4:8080@node-b")

		if err := store.Delete(ctx, "default", "web"); err != nil {
			t.Fatal(err)
		}
		if _, _, err := store.Get(ctx, "default", "web"); !errors.Is(err, kvstore.ErrNotFound) {
			t.Fatalf("deleted service: %v, want ErrNotFound", err)
		}
	})
}

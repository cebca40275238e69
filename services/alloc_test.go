package services

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/weftnet/weft/kvstore"
	"github.com/weftnet/weft/kvstore/kvstoretest"
)

var testCIDR = netip.MustParsePrefix("10.96.0.0/24")

func TestMain(m *testing.M) { kvstoretest.Main(m) }

func newAllocator(t testing.TB, c kvstore.Client) *Allocator {
	t.Helper()
	a, err := NewAllocator(c, "c1", testCIDR, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func nodePortSpec(name string, ports ...string) Spec {
	s, err := ParseFlags(Flags{Name: name, Type: "NodePort", Ports: ports, Selector: []string{"app=" + name}})
	if err != nil {
		panic(err)
	}
	return s
}

func TestAllocate(t *testing.T) {
	for _, srv := range kvstoretest.Servers(t) {
		t.Run(srv.Name(), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			t.Run("concurrent agents never clash", func(t *testing.T) { testConcurrent(ctx, t, srv) })
			t.Run("updates keep allocations", func(t *testing.T) { testUpdate(ctx, t, srv) })
			t.Run("bad input writes nothing", func(t *testing.T) { testRefused(ctx, t, srv) })
		})
	}
}

func testConcurrent(ctx context.Context, t *testing.T, srv kvstoretest.Server) {
	const agents, each = 3, 8
	var wg sync.WaitGroup
	errs := make(chan error, agents*each)
	for i := range agents {
		a := newAllocator(t, srv.NewClient(t))
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range each {
				if _, err := a.Apply(ctx, CreateOnly, nodePortSpec(fmt.Sprintf("svc-%d-%d", i, j), "80")); err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	a := newAllocator(t, srv.NewClient(t))
	all, _, err := a.list(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ips, ports := map[netip.Addr]string{}, map[uint16]string{}
	for key, r := range all {
		if !strings.HasPrefix(r.Name, "svc-") {
			continue
		}
		if o, dup := ips[r.Frontends[0]]; dup {
			t.Errorf("cluster IP %v held by %s and %s", r.Frontends[0], o, key)
		}
		if o, dup := ports[r.Ports[0].NodePort]; dup {
			t.Errorf("node port %d held by %s and %s", r.Ports[0].NodePort, o, key)
		}
		if !testCIDR.Contains(r.Frontends[0]) || r.Ports[0].NodePort < MinNodePort || r.Ports[0].NodePort > MaxNodePort {
			t.Errorf("%s: cluster IP %v or node port %d out of range", key, r.Frontends[0], r.Ports[0].NodePort)
		}
		ips[r.Frontends[0]], ports[r.Ports[0].NodePort] = key, key
	}
	if len(ips) != agents*each {
		t.Fatalf("%d services, want %d", len(ips), agents*each)
	}
}

func testUpdate(ctx context.Context, t *testing.T, srv kvstoretest.Server) {
	a := newAllocator(t, srv.NewClient(t))
	first, err := a.Apply(ctx, CreateOnly, nodePortSpec("upd", "http=80", "dns=53/UDP"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Apply(ctx, CreateOnly, nodePortSpec("upd", "http=80")); !errors.Is(err, ErrExists) {
		t.Fatalf("second create: %v, want ErrExists", err)
	}
	if _, err := a.Apply(ctx, UpdateOnly, nodePortSpec("nope", "80")); !errors.Is(err, ErrNotFound) {
		t.Fatalf("update of a missing service: %v, want ErrNotFound", err)
	}
	s := nodePortSpec("upd", "http=80:8080", "dns=53/UDP")
	s.SessionAffinity = "ClientIP"
	got, err := a.Apply(ctx, UpdateOnly, s)
	if err != nil {
		t.Fatal(err)
	}
	if got[0].Frontends[0] != first[0].Frontends[0] || got[0].Ports[0].NodePort != first[0].Ports[0].NodePort ||
		got[0].Ports[1].NodePort != first[0].Ports[1].NodePort || got[0].Ports[0].TargetPort != 8080 {
		t.Fatalf("update changed allocations: %+v, was %+v", got[0], first[0])
	}
	stored, err := a.Get(ctx, "default", "upd")
	if err != nil || stored.SessionAffinity != "ClientIP" {
		t.Fatalf("stored %+v, %v", stored, err)
	}
	if ok, err := a.Delete(ctx, "default", "upd"); !ok || err != nil {
		t.Fatalf("delete: %v %v", ok, err)
	}
	if _, err := a.Get(ctx, "default", "upd"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("get after delete: %v", err)
	}
	if ok, err := a.Delete(ctx, "default", "upd"); ok || err != nil {
		t.Fatalf("second delete: %v %v", ok, err)
	}
}

func testRefused(ctx context.Context, t *testing.T, srv kvstoretest.Server) {
	c := srv.NewClient(t)
	a := newAllocator(t, c)
	if _, err := a.Apply(ctx, CreateOrUpdate, withClusterIP(nodePortSpec("taken", "80"), "10.96.0.200"), withNodePort(nodePortSpec("taken-np", "80"), 31000)); err != nil {
		t.Fatal(err)
	}
	before, err := c.List(ctx, a.keys.ServicesPrefix("c1"))
	if err != nil {
		t.Fatal(err)
	}
	ext := nodePortSpec("ext", "80")
	ext.ExternalIPs = []netip.Addr{netip.MustParseAddr("192.0.2.1")}
	if _, err := a.Apply(ctx, CreateOnly, ext); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Delete(ctx, "default", "ext"); err != nil {
		t.Fatal(err)
	}
	ext2 := ext
	ext2.Name = "ext2"
	for _, tc := range []struct {
		name  string
		specs []Spec
		err   string
	}{
		{"outside the CIDR", []Spec{withClusterIP(nodePortSpec("a", "80"), "10.97.0.1")}, "inside the service CIDR 10.96.0.0/24"},
		{"cluster IP clash", []Spec{withClusterIP(nodePortSpec("b", "80"), "10.96.0.200")}, "already taken by service default/taken"},
		{"node port clash", []Spec{withNodePort(nodePortSpec("c", "80"), 31000)}, "nodePort 31000/TCP is already taken by service default/taken-np"},
		{"clash inside the batch", []Spec{withNodePort(nodePortSpec("d", "80"), 31001), withNodePort(nodePortSpec("e", "80"), 31001)}, "nodePort 31001/TCP is already taken by service default/d"},
		{"external frontend clash", []Spec{ext, ext2}, "frontend 192.0.2.1:80/TCP is already served by service default/ext"},
		{"one invalid of two", []Spec{nodePortSpec("f", "80"), {Name: "g", Ports: []Port{{Port: 80, Protocol: "SCTP"}}}}, `protocol "SCTP"`},
		{"cluster IP change", []Spec{withClusterIP(nodePortSpec("taken", "80"), "10.96.0.201")}, "cannot change"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := a.Apply(ctx, CreateOrUpdate, tc.specs...)
			if err == nil || !strings.Contains(err.Error(), tc.err) || !errors.Is(err, ErrInvalid) {
				t.Fatalf("Apply = %v, want an ErrInvalid containing %q", err, tc.err)
			}
			after, err := c.List(ctx, a.keys.ServicesPrefix("c1"))
			if err != nil {
				t.Fatal(err)
			}
			if len(after) != len(before) {
				t.Fatalf("refused apply changed the store: %d keys, was %d", len(after), len(before))
			}
			for i := range after {
				if after[i].Key != before[i].Key || after[i].Revision != before[i].Revision {
					t.Fatalf("refused apply rewrote %s", after[i].Key)
				}
			}
		})
	}
}

func withClusterIP(s Spec, ip string) Spec { s.ClusterIP = netip.MustParseAddr(ip); return s }

func withNodePort(s Spec, port uint16) Spec { s.Ports[0].NodePort = port; return s }

package l7lb

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/weftnet/weft/agent/services"
	"github.com/weftnet/weft/api/agentapi"
	"github.com/weftnet/weft/kvstore/kvstoretest"
	"github.com/weftnet/weft/state/records"
	"github.com/weftnet/weft/state/statetest"
)

// table stands in for agent/services (whose redirects and backends
// agent/services.TestL7Redirect and the e2e tests cover): fixed backends,
// real HTTP servers on loopback, and the redirects it is asked for.
type table struct {
	backends map[services.ServicePort][]netip.AddrPort
	mu       sync.Mutex
	redirect map[services.ServicePort]netip.AddrPort
}

func (tb *table) SetL7Redirect(sp services.ServicePort, to netip.AddrPort) {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	if to.IsValid() {
		tb.redirect[sp] = to
	} else {
		delete(tb.redirect, sp)
	}
}

func (tb *table) Backends(sp services.ServicePort) ([]netip.AddrPort, bool) {
	a, ok := tb.backends[sp]
	return a, ok
}

func (tb *table) redirectOf(sp services.ServicePort) netip.AddrPort {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	return tb.redirect[sp]
}

func backendServer(t *testing.T, name string, code int) netip.AddrPort {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(code)
		fmt.Fprintf(w, "%s %s", name, r.URL.Path)
	}))
	t.Cleanup(srv.Close)
	return netip.MustParseAddrPort(srv.Listener.Addr().String())
}

const testDoc = `apiVersion: weft.io/v1
kind: L7LoadBalancing
metadata: {name: web, namespace: shop}
spec:
  service: web
  port: 80
  backends: [{service: web-v1, weight: 1}]
  retries: {attempts: 2}
`

// TestComponent: an applied document is served on the node's address
// and its Service port redirected there, requests retried past a failing
// backend; the same document again is unchanged; a bad one or a second
// one for the port is refused and writes nothing; a changed document is
// served by the same listener; delete takes the redirect away and closes
// the listener.
func TestComponent(t *testing.T) {
	web := services.ServicePort{Namespace: "shop", Name: "web", Port: 80}
	good, bad := backendServer(t, "good", 200), backendServer(t, "bad", 503)
	tb := &table{redirect: map[services.ServicePort]netip.AddrPort{}, backends: map[services.ServicePort][]netip.AddrPort{
		{Namespace: "shop", Name: "web-v1", Port: 80}: {bad, good},
		{Namespace: "shop", Name: "web-v2", Port: 80}: {good},
		web: {good},
	}}
	store := kvstoretest.StartEtcd(t).NewClient(t, statetest.Unlimited)
	keys := records.NewKeys(store.Prefix())
	c, err := New(store, keys, Config{Cluster: "c1", NodeIP: netip.MustParseAddr("127.0.0.1")}, tb, prometheus.NewRegistry(), statetest.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	statetest.Go(t, c.Run)
	api := NewAPI(c)
	ctx := statetest.Context(t, time.Minute)

	apply := func(doc string) (string, error) {
		resp, err := api.Apply(ctx, &agentapi.ApplyL7LBRequest{Documents: []byte(doc)})
		if err != nil {
			return "", err
		}
		return resp.GetDocuments()[0].GetResult(), nil
	}
	if res, err := apply(testDoc); err != nil || res != "created" {
		t.Fatalf("apply: %q, %v; want created", res, err)
	}
	var listener netip.AddrPort
	statetest.Eventually(t, 10*time.Second, "web:80 redirected to a listener", func() error {
		if listener = tb.redirectOf(web); !listener.IsValid() {
			return fmt.Errorf("no redirect")
		}
		return nil
	})
	get := func() (string, error) {
		resp, err := http.Get("http://" + listener.String() + "/x")
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return fmt.Sprintf("%d %s", resp.StatusCode, b), nil
	}
	for range 6 {
		if got, err := get(); err != nil || got != "200 good /x" {
			t.Fatalf("through the listener: %q, %v; want 200 from the good backend (the failing one retried)", got, err)
		}
	}

	if res, err := apply(testDoc); err != nil || res != "unchanged" {
		t.Errorf("apply again: %q, %v; want unchanged", res, err)
	}
	key := keys.L7LB("c1", "shop", "web")
	before, err := store.Get(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct{ doc, want string }{
		"bad weight":     {strings.Replace(testDoc, "weight: 1", "weight: 1001", 1), "spec.backends[0].weight 1001: want 0-1000"},
		"second for :80": {strings.Replace(testDoc, "name: web,", "name: other,", 1), "selected by the stored L7LoadBalancing shop/web"},
		"batch with one bad": {strings.Replace(testDoc, "web-v1", "web-v2", 1) + "---\n" + strings.Replace(testDoc, "port: 80", "port: 0", 1),
			"document 2: L7LoadBalancing shop/web refused: spec.port 0"},
	} {
		_, err := apply(tc.doc)
		if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v; want InvalidArgument naming %q", name, err, tc.want)
		}
	}
	if after, err := store.Get(ctx, key); err != nil || after.Revision != before.Revision {
		t.Errorf("refused applies changed %s: revision %d → %d (%v)", key, before.Revision, after.Revision, err)
	}
	if kvs, _ := store.List(ctx, keys.L7LBPrefix("c1")); len(kvs) != 1 {
		t.Errorf("refused applies left %d records, want 1", len(kvs))
	}

	if res, err := apply(strings.Replace(testDoc, "web-v1", "web-v2", 1)); err != nil || res != "configured" {
		t.Fatalf("apply a change: %q, %v; want configured", res, err)
	}
	statetest.Eventually(t, 10*time.Second, "the changed document listed with the same listener", func() error {
		list, err := api.List(ctx, &agentapi.ListL7LBRequest{})
		if err != nil || len(list.GetDocuments()) != 1 {
			return fmt.Errorf("%v %v", list, err)
		}
		d := list.GetDocuments()[0]
		if d.GetListener() != listener.String() || d.GetError() != "" || strings.Join(d.GetBackends(), ",") != "web-v2:80=1" {
			return fmt.Errorf("listed %v", d)
		}
		return nil
	})

	if resp, err := api.Delete(ctx, &agentapi.DeleteL7LBRequest{Namespace: "shop", Name: "web"}); err != nil || !resp.GetExisted() {
		t.Fatalf("delete: %v %v", resp, err)
	}
	statetest.Eventually(t, 10*time.Second, "redirect removed and listener closed", func() error {
		if to := tb.redirectOf(web); to.IsValid() {
			return fmt.Errorf("still redirected to %v", to)
		}
		if _, err := get(); err == nil {
			return fmt.Errorf("the listener still answers")
		}
		return nil
	})
	if resp, err := api.Delete(ctx, &agentapi.DeleteL7LBRequest{Namespace: "shop", Name: "web"}); err != nil || resp.GetExisted() {
		t.Errorf("delete again: %v %v; want not existed, no error", resp, err)
	}
}

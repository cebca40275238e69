package ingress

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/weftnet/weft/agent/services"
	"github.com/weftnet/weft/api/agentapi"
	"github.com/weftnet/weft/internal/testcert"
	"github.com/weftnet/weft/kvstore/kvstoretest"
	"github.com/weftnet/weft/state/records"
	"github.com/weftnet/weft/state/statetest"
)

// table is a service table of fixed backends (what agent/services
// computes on a node).
type table map[string][]netip.AddrPort

func (t table) BackendsOf(ns, name string, port int32, _ string) ([]netip.AddrPort, error) {
	b, ok := t[fmt.Sprintf("%s/%s:%d", ns, name, port)]
	if !ok {
		return nil, fmt.Errorf("service %s/%s: %w", ns, name, services.ErrNoService)
	}
	return b, nil
}

type noNodes struct{}

func (noNodes) List() []records.Node { return nil }

const shop = `apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: shop
spec:
  ingressClassName: weft
  tls:
  - hosts: [shop.example.com]
    secretName: shop-tls
  rules:
  - host: shop.example.com
    http:
      paths:
      - path: /
        pathType: Prefix
        backend:
          service:
            name: web
            port:
              number: 80
`

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// TestServeFromStore: an Ingress applied through the API (real etcd) is
// served over HTTP and HTTPS on the node's address with the stored
// certificate; a second apply changes nothing; a record another source
// owns is not overwritten; delete stops serving and takes the certificate
// along.
func TestServeFromStore(t *testing.T) {
	store := kvstoretest.StartEtcd(t).NewClient(t, statetest.Unlimited)
	ctx := statetest.Context(t, time.Minute)
	web := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprintf(w, "web %s", r.URL.Path) }))
	t.Cleanup(web.Close)
	cfg := Config{HTTPPort: freePort(t), HTTPSPort: freePort(t)}
	keys := records.NewKeys(store.Prefix())
	c := New(store, keys, "c1", netip.MustParseAddr("127.0.0.1"), cfg,
		table{"default/web:80": {netip.MustParseAddrPort(strings.TrimPrefix(web.URL, "http://"))}}, noNodes{}, statetest.Logger(t))
	runCtx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(runCtx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	})
	api := NewAPI(c)

	certPEM, keyPEM, pool := testcert.SelfSigned(t, "shop.example.com")
	req := &agentapi.ApplyIngressesRequest{Documents: []byte(shop), Secrets: []*agentapi.TLSSecret{{Name: "shop-tls", CertPem: certPEM, KeyPem: keyPEM}}}
	for i, wantChanged := range []bool{true, false} {
		resp, err := api.Apply(ctx, req)
		if err != nil || len(resp.Ingresses) != 2 || resp.Ingresses[1].Changed != wantChanged {
			t.Fatalf("apply %d: %v %v, want changed=%v", i+1, resp, err, wantChanged)
		}
	}

	httpURL := "http://127.0.0.1:" + strconv.Itoa(cfg.HTTPPort)
	get := func(c *http.Client, url, host string) (int, string, error) {
		r, _ := http.NewRequest("GET", url, nil)
		r.Host = host
		resp, err := c.Do(r)
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), err
	}
	statetest.Eventually(t, 10*time.Second, "GET / on shop.example.com over HTTP", func() error {
		if code, body, err := get(http.DefaultClient, httpURL+"/cart", "shop.example.com"); err != nil || code != 200 || body != "web /cart" {
			return fmt.Errorf("%d %q %v", code, body, err)
		}
		return nil
	})
	https := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "shop.example.com"}}}
	if code, body, err := get(https, "https://127.0.0.1:"+strconv.Itoa(cfg.HTTPSPort)+"/cart", "shop.example.com"); err != nil || code != 200 || body != "web /cart" {
		t.Errorf("HTTPS: %d %q %v", code, body, err)
	}
	list, _ := api.List(ctx, &agentapi.ListIngressesRequest{})
	if len(list.Ingresses) != 1 || list.Ingresses[0].Routes[0].ReadyBackends != 1 || list.Ingresses[0].Error != "" {
		t.Errorf("list: %v", list)
	}

	// A record of the Kubernetes mirror is not taken over.
	key := keys.Ingress("c1", "default", "mirrored")
	v, _ := records.Encode(key, &records.Ingress{Cluster: "c1", Namespace: "default", Name: "mirrored", Source: "kubernetes", Document: `{}`})
	if _, err := store.Update(ctx, key, v); err != nil {
		t.Fatal(err)
	}
	_, err := api.Apply(ctx, &agentapi.ApplyIngressesRequest{Documents: []byte(strings.Replace(shop, "name: shop\n", "name: mirrored\n", 1))})
	if status.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), "owned by kubernetes") {
		t.Errorf("apply over a kubernetes record: %v", err)
	}
	if kv, err := store.Get(ctx, key); err != nil || string(kv.Value) != string(v) {
		t.Errorf("the kubernetes record changed: %s %v", kv.Value, err)
	}

	if resp, err := api.Delete(ctx, &agentapi.DeleteIngressRequest{Name: "shop"}); err != nil || !resp.Existed {
		t.Fatalf("delete: %v %v", resp, err)
	}
	if _, err := store.Get(ctx, keys.IngressSecret("c1", "default", "shop-tls")); err == nil {
		t.Error("the certificate stored with the Ingress outlived it")
	}
	statetest.Eventually(t, 10*time.Second, "404 after the delete", func() error {
		if code, body, err := get(http.DefaultClient, httpURL+"/cart", "shop.example.com"); err != nil || code != http.StatusNotFound {
			return fmt.Errorf("%d %q %v", code, body, err)
		}
		return nil
	})
}

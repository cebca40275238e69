package l7lb

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestMetrics: three requests over a failing and a good backend, two
// tries each at most, ejection after two failures: every request is
// answered 200, the failing backend is tried twice (5xx) and ejected
// once, the good one answers three times; Forget drops the series.
func TestMetrics(t *testing.T) {
	a, b := start(t, "a"), start(t, "b")
	a.set(http.StatusServiceUnavailable, 0)
	p := mustParse(t, `apiVersion: weft.io/v1
kind: L7LoadBalancing
metadata: {name: web, namespace: shop}
spec:
  service: web
  port: 80
  retries: {attempts: 2}
  outlierDetection: {consecutive5xx: 2, ejectionTime: 1m}`)
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	lb := NewBalancer(p, func(Target) ([]netip.AddrPort, error) { return []netip.AddrPort{a.addr, b.addr}, nil }, nil).CountIn(m)
	front := httptest.NewServer(lb)
	defer front.Close()
	for range 3 {
		if code, body := do(t, front.URL+"/", ""); code != http.StatusOK {
			t.Fatalf("%d %s", code, body)
		}
	}
	for _, tc := range []struct {
		c    prometheus.Collector
		want float64
	}{
		{m.requests.WithLabelValues("shop/web", "200"), 3},
		{m.tries.WithLabelValues("shop/web", "web", "ok"), 3},
		{m.tries.WithLabelValues("shop/web", "web", "5xx"), 2},
		{m.ejections.WithLabelValues("shop/web"), 1},
	} {
		if got := testutil.ToFloat64(tc.c); got != tc.want {
			t.Errorf("%v = %v, want %v", tc.c.(prometheus.Metric).Desc(), got, tc.want)
		}
	}
	m.Forget("shop/web")
	if n := testutil.CollectAndCount(reg); n != 0 {
		t.Errorf("%d series left after Forget", n)
	}
}

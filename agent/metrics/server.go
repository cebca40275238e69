package metrics

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"regexp"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// liveHeap is the runtime metric of the heap the last garbage collection
// found live (go_gc_heap_live_bytes): unlike go_memstats_heap_alloc_bytes
// it does not move with the garbage made since, so it compares the
// agent's memory between two moments (e2e BenchmarkAgentMemoryLocalEndpoints).
var liveHeap = collectors.GoRuntimeMetricsRule{Matcher: regexp.MustCompile(`^/gc/heap/live:bytes$`)}

// NewRegistry returns a registry holding the Go runtime and process
// collectors; the agent registers its components' metrics into it.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(collectors.WithGoCollectorRuntimeMetrics(liveHeap)),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// Serve serves g at /metrics on l until ctx ends.
func Serve(ctx context.Context, l net.Listener, g prometheus.Gatherer) error {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(g, promhttp.HandlerOpts{}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	stop := context.AfterFunc(ctx, func() { srv.Close() })
	defer stop()
	if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve metrics on %s: %w", l.Addr(), err)
	}
	return nil
}

// ListenAndServe listens on cfg.Address and serves g until ctx ends;
// without an address it returns at once.
func ListenAndServe(ctx context.Context, cfg Config, g prometheus.Gatherer) error {
	if cfg.Address == "" {
		return nil
	}
	l, err := net.Listen("tcp", cfg.Address)
	if err != nil {
		return fmt.Errorf("listen for metrics on %s: %w", cfg.Address, err)
	}
	return Serve(ctx, l, g)
}

package metrics

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
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
	return serve(ctx, l, mux, "metrics")
}

// ServePprof serves Go's profiles at /debug/pprof/ on l until ctx ends.
func ServePprof(ctx context.Context, l net.Listener) error {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index) // and the named profiles: heap, goroutine, ...
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return serve(ctx, l, mux, "profiles")
}

func serve(ctx context.Context, l net.Listener, h http.Handler, what string) error {
	// No WriteTimeout: a CPU profile or trace takes as long as it is asked.
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	stop := context.AfterFunc(ctx, func() { srv.Close() })
	defer stop()
	if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve %s on %s: %w", what, l.Addr(), err)
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

// ListenAndServePprof listens on cfg.PprofAddress and serves the profiles
// until ctx ends; without an address it returns at once.
func ListenAndServePprof(ctx context.Context, cfg Config) error {
	if cfg.PprofAddress == "" {
		return nil
	}
	l, err := net.Listen("tcp", cfg.PprofAddress)
	if err != nil {
		return fmt.Errorf("listen for profiles on %s: %w", cfg.PprofAddress, err)
	}
	return ServePprof(ctx, l)
}

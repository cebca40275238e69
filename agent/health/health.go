package health

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"github.com/weftnet/weft/state/records"
)

// Serve answers GET /healthz on the node address with "ok <node>",
// so other nodes (and pods) can check this node is reachable.
func Serve(ctx context.Context, ip netip.Addr, port int, node string) error {
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintf(w, "ok %s\n", node)
	})
	addr := net.JoinHostPort(ip.String(), strconv.Itoa(port))
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen for health checks on %s: %w", addr, err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	if err := srv.Serve(l); !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve health checks: %w", err)
	}
	return nil
}

// Result is the last probe of one node.
type Result struct {
	Node, Cluster string
	IP            netip.Addr
	Reachable     bool
	Latency       time.Duration
	Err           string
}

// Nodes lists the nodes to probe (*agent/nodes.Table).
type Nodes interface {
	List() []records.Node
}

// Prober probes every other node's health endpoint periodically.
type Prober struct {
	self     string
	interval time.Duration
	log      *slog.Logger
	client   *http.Client

	mu      sync.Mutex
	results map[string]Result // by node name
	port    int
}

// NewProber probes, every interval, the health endpoint on port of every
// node but self.
func NewProber(self string, port int, interval time.Duration, log *slog.Logger) *Prober {
	return &Prober{
		self: self, port: port, interval: interval, log: log.With("component", "health"),
		client:  &http.Client{Timeout: 2 * time.Second},
		results: map[string]Result{},
	}
}

// Run probes until ctx ends.
func (p *Prober) Run(ctx context.Context, nodes Nodes) error {
	t := time.NewTicker(p.interval)
	defer t.Stop()
	for {
		p.probeAll(ctx, nodes)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

func (p *Prober) probeAll(ctx context.Context, nodes Nodes) {
	seen := map[string]bool{}
	var wg sync.WaitGroup
	for _, n := range nodes.List() {
		if n.Name == p.self || len(n.Underlay) == 0 {
			continue
		}
		seen[n.Name] = true
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := p.probe(ctx, n.Underlay[0])
			r.Node, r.Cluster = n.Name, n.Cluster
			p.mu.Lock()
			if old, ok := p.results[n.Name]; ok && old.Reachable != r.Reachable {
				p.log.Info("node health changed", "node", n.Name, "reachable", r.Reachable, "err", r.Err)
			}
			p.results[n.Name] = r
			p.mu.Unlock()
		}()
	}
	wg.Wait()
	p.mu.Lock()
	for name := range p.results {
		if !seen[name] {
			delete(p.results, name)
		}
	}
	p.mu.Unlock()
}

func (p *Prober) probe(ctx context.Context, ip netip.Addr) Result {
	r := Result{IP: ip}
	url := "http://" + net.JoinHostPort(ip.String(), strconv.Itoa(p.port)) + "/healthz"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		r.Err = err.Error()
		return r
	}
	start := time.Now()
	resp, err := p.client.Do(req)
	if err != nil {
		r.Err = err.Error()
		return r
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	r.Latency = time.Since(start)
	r.Reachable = resp.StatusCode == http.StatusOK
	if !r.Reachable {
		r.Err = resp.Status
	}
	return r
}

// Snapshot returns the last result of every probed node.
func (p *Prober) Snapshot() []Result {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]Result, 0, len(p.results))
	for _, r := range p.results {
		out = append(out, r)
	}
	return out
}

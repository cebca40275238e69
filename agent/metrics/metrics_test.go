package metrics_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/weftnet/weft/agent/metrics"
	"github.com/weftnet/weft/api/agentapi"
	"github.com/weftnet/weft/datapath"
	"github.com/weftnet/weft/flow"
	"github.com/weftnet/weft/internal/testgate"
)

// counters stands for the BPF map (the datapath tests read the real one).
type counters map[datapath.TrafficKey]datapath.Counter

func (c counters) Traffic(context.Context) (map[datapath.TrafficKey]datapath.Counter, error) {
	return c, nil
}

// promtool runs `promtool check metrics` on text and returns its findings.
func promtool(t *testing.T, text string) string {
	t.Helper()
	bin, err := exec.LookPath("promtool")
	if err != nil {
		testgate.Skip(t, "promtool not installed (Debian package prometheus, installed by make deps)")
	}
	cmd := exec.Command(bin, "check", "metrics")
	cmd.Stdin = strings.NewReader(text)
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatalf("run promtool: %v", err)
	}
	return strings.TrimSpace(string(out))
}

// agentRegistry holds every metric an agent exports, each with a value.
func agentRegistry(t *testing.T) *prometheus.Registry {
	t.Helper()
	reg := metrics.NewRegistry()
	a, err := metrics.NewAgent(reg)
	if err != nil {
		t.Fatal(err)
	}
	ring := flow.NewRing(16)
	fm, err := flow.NewMetrics(reg, ring)
	if err != nil {
		t.Fatal(err)
	}
	reg.MustRegister(datapath.NewCollector(counters{
		{Reason: datapath.ReasonForwarded, Direction: datapath.Egress}:     {Packets: 10, Bytes: 1000},
		{Reason: datapath.ReasonPolicyDenied, Direction: datapath.Ingress}: {Packets: 3, Bytes: 180},
	}, slog.New(slog.DiscardHandler)))

	// Every metric gets a value, as in a running agent.
	scrapes := 0
	a.OnScrape(func(a *metrics.Agent) {
		a.Endpoints.Set(3)
		// The remote's cumulative counts, growing between scrapes: the
		// counter follows them without counting twice.
		scrapes++
		a.SetRemoteRejected("c2", map[string]uint64{"pod-cidr": uint64(2 * scrapes), "address-conflict": 1})
	})
	a.Identities.WithLabelValues("local").Set(5)
	a.IPCacheEntries.WithLabelValues("c1").Set(8)
	a.Services.Set(2)
	a.ServiceBackends.Set(4)
	a.PolicyImports.WithLabelValues("stored").Inc()
	a.PolicyRecompute.Observe(0.002)
	a.ObserveStoreOp("update", 3*time.Millisecond, nil)
	a.ObserveStoreOp("get", time.Millisecond, errors.New("unavailable"))
	a.LeaseLosses.Inc()
	a.SetRemote("c2", true, time.Unix(1800000000, 0))
	a.RemoteEntries.WithLabelValues("c2", "nodes").Set(2)
	a.HealthProbe.WithLabelValues("c1-n2").Set(0.0004)
	f := &agentapi.Flow{Verdict: agentapi.Verdict_DROPPED, ObservationPoint: "to-endpoint"}
	ring.Write(f)
	fm.Observe(f)
	return reg
}

func TestAgentMetricsPassPromtool(t *testing.T) {
	reg := agentRegistry(t)

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- metrics.Serve(ctx, l, reg) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	resp, err := http.Get("http://" + l.Addr().String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body bytes.Buffer
	if _, err := io.Copy(&body, resp.Body); err != nil {
		t.Fatal(err)
	}
	text := body.String()
	resp2, err := http.Get("http://" + l.Addr().String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp2.Body.Close()
	second, _ := io.ReadAll(resp2.Body)
	for i, want := range []string{`weft_clustermesh_remote_rejected_records_total{reason="pod-cidr",remote="c2"} 2`,
		`weft_clustermesh_remote_rejected_records_total{reason="pod-cidr",remote="c2"} 4`} {
		if got := []string{text, string(second)}[i]; !strings.Contains(got, want+"\n") {
			t.Errorf("scrape %d lacks %q", i+1, want)
		}
	}
	if problems := promtool(t, text); problems != "" {
		t.Errorf("promtool check metrics:\n%s", problems)
	}
	for _, want := range []string{
		`weft_datapath_packets_total{direction="ingress",reason="policy_denied",verdict="dropped"} 3`,
		`weft_datapath_packets_total{direction="egress",reason="policy_denied",verdict="dropped"} 0`,
		`weft_datapath_bytes_total{direction="egress",reason="forwarded",verdict="forwarded"} 1000`,
		`weft_datapath_packets_total{direction="ingress",reason="no_service_backend",verdict="dropped"} 0`,
		`weft_flow_ring_flows 1`,
		`weft_flow_ring_capacity_flows 16`,
		`weft_endpoints 3`,
		`weft_kvstore_operation_errors_total{operation="get"} 1`,
		`weft_clustermesh_remote_cluster_ready{remote="c2"} 1`,
		`weft_clustermesh_remote_last_sync_timestamp_seconds{remote="c2"} 1.8e+09`,
		`weft_clustermesh_remote_rejected_records_total{reason="address-conflict",remote="c2"} 1`,
	} {
		if !strings.Contains(text, want+"\n") {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	for addr, want := range map[string]string{
		"":               "",
		":9962":          "",
		"127.0.0.1:9962": "",
		"9962":           `metrics address "9962": accepted: host:port or :port`,
		":99999":         `metrics address ":99999": port "99999": accepted: 1 to 65535`,
	} {
		err := metrics.Config{Address: addr}.Validate()
		if (want == "") != (err == nil) || (err != nil && !strings.HasPrefix(err.Error(), want)) {
			t.Errorf("Validate(%q) = %v, want %q", addr, err, want)
		}
	}
	if err := (metrics.Config{PprofAddress: "6060"}).Validate(); err == nil || !strings.HasPrefix(err.Error(), `pprof address "6060": accepted: host:port or :port`) {
		t.Errorf("Validate(pprof 6060) = %v, want the pprof address named", err)
	}
}

// The profiles endpoint answers Go's pprof index, a goroutine dump naming
// the agent's functions, and a short CPU profile; it stops with ctx.
func TestServePprof(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- metrics.ServePprof(ctx, l) }()
	get := func(path string) string {
		t.Helper()
		resp, err := http.Get("http://" + l.Addr().String() + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("GET %s: %d %v", path, resp.StatusCode, err)
		}
		return string(b)
	}
	if idx := get("/debug/pprof/"); !strings.Contains(idx, "goroutine") || !strings.Contains(idx, "heap") {
		t.Errorf("the index lists no goroutine and heap profiles:\n%.300s", idx)
	}
	if g := get("/debug/pprof/goroutine?debug=1"); !strings.Contains(g, "metrics.ServePprof") {
		t.Errorf("the goroutine dump does not show the server's own goroutine:\n%.500s", g)
	}
	if p := get("/debug/pprof/profile?seconds=1"); len(p) == 0 {
		t.Error("an empty CPU profile")
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("ServePprof after ctx ended: %v", err)
	}
}

// Every metric the Grafana dashboard queries is one the agent exports.
func TestDashboardQueriesExportedMetrics(t *testing.T) {
	raw, err := os.ReadFile("../../deploy/grafana/weft-agent.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string
			Targets []struct{ Expr string }
		}
	}
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatalf("parse dashboard: %v", err)
	}
	families, err := agentRegistry(t).Gather()
	if err != nil {
		t.Fatal(err)
	}
	exported := map[string]bool{}
	for _, mf := range families {
		exported[mf.GetName()] = true
	}
	name := regexp.MustCompile(`weft_[a-z_]+`)
	queried := 0
	for _, p := range dash.Panels {
		for _, tg := range p.Targets {
			for _, m := range name.FindAllString(tg.Expr, -1) {
				queried++
				if !exported[strings.TrimSuffix(m, "_bucket")] {
					t.Errorf("panel %q queries %s, which the agent does not export", p.Title, m)
				}
			}
		}
	}
	if queried == 0 {
		t.Fatal("the dashboard queries no weft_ metric")
	}
}

// TestRegistryReportsLiveHeap: the heap the last collection found live is
// exported, and grows with what this process holds.
func TestRegistryReportsLiveHeap(t *testing.T) {
	reg := metrics.NewRegistry()
	live := func() float64 {
		runtime.GC()
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			if mf.GetName() == "go_gc_heap_live_bytes" {
				return mf.GetMetric()[0].GetGauge().GetValue()
			}
		}
		t.Fatal("no go_gc_heap_live_bytes among the registry's metrics")
		return 0
	}
	// Objects of earlier tests that die in between lower the live heap by
	// up to a MiB or so (CI saw 1.0 MiB under -race), so the held block is
	// large against that: 64 MiB must show as at least 60.
	live()
	before := live()
	held := make([]byte, 64<<20)
	after := live()
	runtime.KeepAlive(held)
	if after-before < 60<<20 {
		t.Errorf("go_gc_heap_live_bytes went from %.0f to %.0f holding 64 MiB more", before, after)
	}
}

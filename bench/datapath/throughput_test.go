package datapathbench

import (
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"slices"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/weftnet/weft/datapath"
	"github.com/weftnet/weft/datapath/datapathtest"
	"github.com/weftnet/weft/internal/testgate"
)

const (
	iperfSeconds = 2
	iperfRounds  = 8
)

// BenchmarkPodToPodThroughput compares a cross-node TCP stream through
// Weft with the same topology forwarded by the kernel alone, rounds
// interleaved, medians reported. It also reports the per-skb run time of
// each program from BPF statistics.
func BenchmarkPodToPodThroughput(b *testing.B) {
	testgate.Root(b)
	stats, err := ebpf.EnableStats(uint32(unix.BPF_STATS_RUN_TIME))
	if err != nil {
		b.Fatalf("enable bpf stats: %v", err)
	}
	defer stats.Close()
	for _, mode := range []datapath.Mode{datapath.ModeTunnel, datapath.ModeNative} {
		b.Run(string(mode), func(b *testing.B) {
			for range b.N {
				weftLab, kernelLab := datapathtest.New(b, mode, 2), datapathtest.NewKernel(b, mode, 2)
				wc, ws := pair(b, weftLab)
				kc, ks := pair(b, kernelLab)
				weft, kernel, ratios := pairedRounds(b, [2]*datapathtest.Pod{wc, ws}, [2]*datapathtest.Pod{kc, ks})
				w, k, r := median(weft), median(kernel), median(ratios)
				b.ReportMetric(w/1e9, "weft-Gbit/s")
				b.ReportMetric(k/1e9, "kernel-Gbit/s")
				b.ReportMetric(r, "ratio")
				b.Logf("%s: weft %.2f Gbit/s %v, kernel %.2f Gbit/s %v, median paired ratio %.3f", mode, w/1e9, gbits(weft), k/1e9, gbits(kernel), r)
				reportRunTime(b, weftLab)
			}
		})
	}
}

// pairedRounds runs iperfRounds streams through each of two client/server
// pairs, alternating which goes first so that load from elsewhere on the
// machine hits both alike, and returns both rates (bits/s) and the a/b
// ratio of each round.
func pairedRounds(b *testing.B, a, c [2]*datapathtest.Pod) (aRates, cRates, ratios []float64) {
	for round := range iperfRounds {
		var x, y float64
		if round%2 == 0 {
			x, y = iperf(b, a[0], a[1]), iperf(b, c[0], c[1])
		} else {
			y, x = iperf(b, c[0], c[1]), iperf(b, a[0], a[1])
		}
		aRates, cRates, ratios = append(aRates, x), append(cRates, y), append(ratios, x/y)
	}
	return aRates, cRates, ratios
}

func pair(b *testing.B, lab *datapathtest.Lab) (client, server *datapathtest.Pod) {
	client = lab.Nodes[0].AddPod("client", 1001)
	server = lab.Nodes[1].AddPod("server", 1002)
	lab.Wire()
	return client, server
}

// iperf runs one iperf3 stream client -> server and returns bits/s.
func iperf(b *testing.B, client, server *datapathtest.Pod) float64 {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	srv := exec.CommandContext(ctx, "ip", "netns", "exec", server.NS, "iperf3", "-s", "-1", "-p", "5201")
	if err := srv.Start(); err != nil {
		b.Fatalf("start iperf3 server: %v", err)
	}
	defer srv.Wait()
	defer srv.Process.Kill()
	if err := datapathtest.Eventually(ctx, 10*time.Second, func(ctx context.Context) error {
		out, err := datapathtest.Run(ctx, server.NS, "", "ss", "-Hltn", "sport = :5201")
		if err == nil && len(out) == 0 {
			err = fmt.Errorf("iperf3 not listening yet")
		}
		return err
	}); err != nil {
		b.Fatal(err)
	}
	out, err := datapathtest.Run(ctx, client.NS, "", "iperf3", "-c", server.IP.String(), "-p", "5201", "-t", fmt.Sprint(iperfSeconds), "-J")
	if err != nil {
		b.Fatal(err)
	}
	var res struct {
		End struct {
			SumReceived struct {
				BitsPerSecond float64 `json:"bits_per_second"`
			} `json:"sum_received"`
		} `json:"end"`
	}
	if err := json.Unmarshal(out, &res); err != nil {
		b.Fatalf("parse iperf3 output: %v", err)
	}
	return res.End.SumReceived.BitsPerSecond
}

// reportRunTime reports the mean run time per invocation of each tc
// program of the client's and the server's node.
func reportRunTime(b *testing.B, lab *datapathtest.Lab) {
	for i, n := range lab.Nodes {
		objs := n.DP.Objects()
		for name, p := range map[string]*ebpf.Program{
			"from-container": objs.FromContainer, "from-overlay": objs.FromOverlay, "from-netdev": objs.FromNetdev,
		} {
			st, err := p.Stats()
			if err != nil {
				b.Fatalf("stats of %s: %v", name, err)
			}
			if st.RunCount == 0 {
				continue
			}
			ns := float64(st.Runtime.Nanoseconds()) / float64(st.RunCount)
			b.ReportMetric(ns, fmt.Sprintf("n%d-%s-ns/run", i+1, name))
			b.Logf("node %d %s: %.0f ns per run over %d runs", i+1, name, ns, st.RunCount)
		}
	}
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}

func gbits(v []float64) []string {
	var out []string
	for _, x := range v {
		out = append(out, fmt.Sprintf("%.2f", x/1e9))
	}
	return out
}

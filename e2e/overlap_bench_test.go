package e2e

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/weftnet/weft/testenv"
)

const (
	translationRounds   = 6
	translationStream   = 2 * time.Second
	translationConnects = 200 // per round
)

// translationLab is one mesh of two clusters of one node: a client pod in
// c2 and a server pod in c1, which the client reaches at dst.
type translationLab struct {
	name           string
	client, server testenv.Target
	dst            netip.Addr
}

// BenchmarkGlobalAddressing compares cross-cluster traffic translated
// between global and pod addresses (two clusters sharing the pod CIDR
// pool, --overlapping-pod-cidrs) with the same traffic untranslated (two
// clusters with disjoint pools), both meshes up in this run, tunnel
// routing: TCP throughput of one stream from a pod of c2 to a pod of c1,
// and the TCP connect time between them (median and 10th percentile).
// Rounds alternate which mesh goes first, so load from elsewhere hits
// both alike; medians over the rounds are reported (benchtable prints
// translated ÷ untranslated), and the median of the per-round ratios is
// logged with the machine's load.
func BenchmarkGlobalAddressing(b *testing.B) {
	meshBinaries(b)
	var labs []*translationLab
	for _, overlap := range []bool{false, true} {
		labs = append(labs, newTranslationLab(b, overlap))
	}
	rate, p50, p10 := map[string][]float64{}, map[string][]float64{}, map[string][]float64{}
	var ratios [3][]float64 // per round, translated ÷ untranslated: throughput, connect p50, connect p10
	for round := range translationRounds {
		order := slices.Clone(labs)
		if round%2 == 1 {
			slices.Reverse(order)
		}
		for _, l := range order {
			rate[l.name] = append(rate[l.name], l.throughput(b))
			m, low := l.connectTimes(b)
			p50[l.name], p10[l.name] = append(p50[l.name], m), append(p10[l.name], low)
		}
		u, t := labs[0].name, labs[1].name
		for i, v := range []map[string][]float64{rate, p50, p10} {
			ratios[i] = append(ratios[i], v[t][round]/v[u][round])
		}
	}
	load, _ := exec.Command("uptime").Output()
	for _, l := range labs {
		b.Run(l.name+"/c2-to-c1", func(b *testing.B) {
			for b.Loop() {
			}
			b.Logf("%s per round: Mbit/s %v, connect p50 µs %v, p10 µs %v", l.name, rounded(rate[l.name]), rounded(p50[l.name]), rounded(p10[l.name]))
			if l == labs[len(labs)-1] {
				b.Logf("median of the per-round ratios translated ÷ untranslated: throughput %.3f, connect p50 %.3f, connect p10 %.3f; load: %s",
					middle(ratios[0]), middle(ratios[1]), middle(ratios[2]), strings.TrimSpace(string(load)))
			}
			b.ReportMetric(middle(rate[l.name]), "Mbit/s")
			b.ReportMetric(middle(p50[l.name]), "connect-p50-µs")
			b.ReportMetric(middle(p10[l.name]), "connect-p10-µs")
		})
	}
}

func newTranslationLab(b *testing.B, overlap bool) *translationLab {
	b.Helper()
	spec := testenv.DefaultSpec()
	spec.Clusters, spec.Nodes, spec.OverlappingPodCIDRs = 2, 1, overlap
	l := &translationLab{name: "untranslated"}
	if overlap {
		l.name = "translated"
	}
	e := up(b, "ga"+l.name[:2], spec)
	waitMeshSynced(b, e, map[string][]string{"c1": {"c2"}, "c2": {"c1"}})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	server, err := e.AddPod(ctx, testenv.PodSpec{Name: "server", Node: "c1-n1"})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := e.AddPod(ctx, testenv.PodSpec{Name: "client", Node: "c2-n1"}); err != nil {
		b.Fatal(err)
	}
	if l.server, err = e.Target("pod/server"); err != nil {
		b.Fatal(err)
	}
	if l.client, err = e.Target("pod/client"); err != nil {
		b.Fatal(err)
	}
	l.dst = server.Addr()
	if overlap {
		l.dst = globalOf(b, 1, server)
	}
	// 5001 swallows a stream; 5002 accepts and closes.
	for port, handle := range map[uint16]func(net.Conn){5001: func(c net.Conn) { io.Copy(io.Discard, c) }, 5002: func(net.Conn) {}} {
		var ln net.Listener
		if err := l.server.Do(func() (err error) {
			ln, err = net.Listen("tcp4", netip.AddrPortFrom(server.Addr(), port).String())
			return err
		}); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { ln.Close() })
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				go func() { defer c.Close(); handle(c) }()
			}
		}()
	}
	eventually(b, time.Minute, fmt.Sprintf("client in c2 connects to the server in c1 at %s", l.dst), func() error {
		return l.client.Do(func() error {
			c, err := net.DialTimeout("tcp4", netip.AddrPortFrom(l.dst, 5002).String(), time.Second)
			if err == nil {
				c.Close()
			}
			return err
		})
	})
	return l
}

// throughput sends one TCP stream for translationStream and returns Mbit/s.
func (l *translationLab) throughput(b *testing.B) float64 {
	b.Helper()
	var c net.Conn
	if err := l.client.Do(func() (err error) {
		c, err = net.DialTimeout("tcp4", netip.AddrPortFrom(l.dst, 5001).String(), 5*time.Second)
		return err
	}); err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	buf := make([]byte, 128<<10)
	var sent int
	start := time.Now()
	c.SetWriteDeadline(start.Add(translationStream))
	for {
		n, err := c.Write(buf)
		sent += n
		if err != nil {
			break
		}
	}
	return float64(sent) * 8 / 1e6 / time.Since(start).Seconds()
}

// connectTimes are the median and 10th percentile of translationConnects
// TCP connect times, in µs: the median includes scheduling noise from
// whatever else runs on the machine, the 10th percentile less so.
func (l *translationLab) connectTimes(b *testing.B) (p50, p10 float64) {
	b.Helper()
	var d []time.Duration
	err := l.client.Do(func() error {
		for range translationConnects {
			start := time.Now()
			c, err := net.DialTimeout("tcp4", netip.AddrPortFrom(l.dst, 5002).String(), 5*time.Second)
			if err != nil {
				return err
			}
			d = append(d, time.Since(start))
			c.Close()
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	return pct(d, 50) * 1e3, pct(d, 10) * 1e3 // pct is in ms
}

func middle(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}

func rounded(v []float64) []string {
	var out []string
	for _, x := range v {
		out = append(out, fmt.Sprintf("%.0f", x))
	}
	return out
}

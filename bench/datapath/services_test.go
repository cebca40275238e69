package datapathbench

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/weftnet/weft/datapath"
	"github.com/weftnet/weft/datapath/datapathtest"
	"github.com/weftnet/weft/internal/testgate"
)

var serviceCounts = []int{10, 1000, 10000, 100000}

const (
	connectRounds   = 5
	connectsPerSize = 100 // per round
)

// serviceIP is the ClusterIP of service i, in 10.96.0.0/12.
func serviceIP(i int) netip.Addr {
	return netip.AddrFrom4([4]byte{10, byte(96 + i>>16), byte(i >> 8), byte(i)})
}

// BenchmarkServiceConnectLatency measures the median TCP connect time from
// a pod to a random one of N ClusterIP services, through Weft's socket load
// balancer and through a kube-proxy-style iptables DNAT chain per service,
// both in this run. Each N has its own node (Weft) and its own node
// namespace (iptables); measurement rounds interleave all of them so that
// noise from other work on the machine hits every size alike.
func BenchmarkServiceConnectLatency(b *testing.B) {
	testgate.Root(b)
	for range b.N {
		lab := datapathtest.New(b, datapath.ModeNative, len(serviceCounts))
		klab := datapathtest.NewKernel(b, datapath.ModeNative, len(serviceCounts))
		var weftClients, iptClients []*datapathtest.Pod
		for i, count := range serviceCounts {
			n, kn := lab.Nodes[i], klab.Nodes[i]
			client, backend := n.AddPod("client", 1001), n.AddPod("backend", 1002)
			kclient, kbackend := kn.AddPod("client", 1001), kn.AddPod("backend", 1002)
			backend.ServeTCP(8080, func(net.Conn) {})
			kbackend.ServeTCP(8080, func(net.Conn) {})
			weftClients, iptClients = append(weftClients, client), append(iptClients, kclient)

			start := time.Now()
			for s := range count {
				svc := datapath.Service{Frontend: netip.AddrPortFrom(serviceIP(s), 80), Proto: datapath.ProtoTCP,
					Type: datapath.ClusterIP, Backends: []datapath.Backend{{Addr: backend.Addr(8080)}}}
				if err := n.DP.UpsertService(context.Background(), svc); err != nil {
					b.Fatal(err)
				}
			}
			fmt.Printf("weft: %d services loaded in %v\n", count, time.Since(start))
			start = time.Now()
			kubeProxyRules(b, kn.NS, count, kbackend.Addr(8080))
			fmt.Printf("iptables: %d services restored in %v\n", count, time.Since(start))
		}
		lab.Wire()
		klab.Wire()

		weft, ipt := make([][]float64, len(serviceCounts)), make([][]float64, len(serviceCounts))
		for range connectRounds {
			for i, count := range serviceCounts {
				leave := lab.Nodes[i].JoinCgroup() // the socket LB applies to this process
				weft[i] = append(weft[i], connectLatency(b, weftClients[i], count)...)
				leave()
				ipt[i] = append(ipt[i], connectLatency(b, iptClients[i], count)...)
			}
		}

		// The median includes scheduling noise from whatever else runs on
		// the machine; the 10th percentile is the datapath's own cost.
		fmt.Println("services  weft p50  iptables p50  ratio | weft p10  iptables p10  ratio")
		for i, count := range serviceCounts {
			w50, k50, w10, k10 := pct(weft[i], 50), pct(ipt[i], 50), pct(weft[i], 10), pct(ipt[i], 10)
			fmt.Printf("%8d  %8v  %12v  %5.2f | %8v  %11v  %5.2f\n", count, w50, k50, float64(k50)/float64(w50), w10, k10, float64(k10)/float64(w10))
			b.ReportMetric(float64(w50.Nanoseconds())/1e3, fmt.Sprintf("weft-%d-p50-µs", count))
			b.ReportMetric(float64(k50.Nanoseconds())/1e3, fmt.Sprintf("iptables-%d-p50-µs", count))
			b.ReportMetric(float64(w10.Nanoseconds())/1e3, fmt.Sprintf("weft-%d-p10-µs", count))
			b.ReportMetric(float64(k10.Nanoseconds())/1e3, fmt.Sprintf("iptables-%d-p10-µs", count))
		}
		last := len(serviceCounts) - 1
		b.ReportMetric(float64(pct(weft[last], 10))/float64(pct(weft[0], 10)), "weft-100k/10-p10-ratio")
		b.ReportMetric(float64(pct(ipt[2], 10))/float64(pct(weft[2], 10)), "iptables/weft-10k-p10-ratio")
	}
}

// connectLatency returns connect times from client to random services
// among the first count. The loop runs on one OS thread inside the
// pod's namespace with blocking socket calls, so the harness adds little
// besides what the datapath costs.
func connectLatency(b *testing.B, client *datapathtest.Pod, count int) []float64 {
	b.Helper()
	samples := make([]float64, 0, connectsPerSize)
	err := datapathtest.InNS(client.NS, func() error {
		for range connectsPerSize {
			addr := netip.AddrPortFrom(serviceIP(rand.IntN(count)), 80)
			fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
			if err != nil {
				return fmt.Errorf("socket: %w", err)
			}
			start := time.Now()
			err = unix.Connect(fd, &unix.SockaddrInet4{Addr: addr.Addr().As4(), Port: int(addr.Port())})
			d := time.Since(start)
			unix.Close(fd)
			if err != nil {
				return fmt.Errorf("connect to %s: %w", addr, err)
			}
			samples = append(samples, float64(d))
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	return samples
}

// kubeProxyRules replaces the nat table of ns with the chains kube-proxy's
// iptables mode writes: KUBE-SERVICES matching each ClusterIP, a
// KUBE-SVC chain per service and a KUBE-SEP chain per endpoint.
func kubeProxyRules(b *testing.B, ns string, count int, backend netip.AddrPort) {
	b.Helper()
	var sb strings.Builder
	sb.WriteString("*nat\n:PREROUTING ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n:KUBE-SERVICES - [0:0]\n:KUBE-MARK-MASQ - [0:0]\n")
	for i := range count {
		fmt.Fprintf(&sb, ":KUBE-SVC-%08X - [0:0]\n:KUBE-SEP-%08X - [0:0]\n", i, i)
	}
	sb.WriteString("-A PREROUTING -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES\n")
	sb.WriteString("-A OUTPUT -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES\n")
	sb.WriteString("-A KUBE-MARK-MASQ -j MARK --or-mark 0x4000\n")
	for i := range count {
		fmt.Fprintf(&sb, "-A KUBE-SERVICES -d %s/32 -p tcp -m comment --comment \"bench/svc-%d:http cluster IP\" -m tcp --dport 80 -j KUBE-SVC-%08X\n", serviceIP(i), i, i)
		fmt.Fprintf(&sb, "-A KUBE-SVC-%08X -m comment --comment \"bench/svc-%d:http -> %s\" -j KUBE-SEP-%08X\n", i, i, backend, i)
		fmt.Fprintf(&sb, "-A KUBE-SEP-%08X -s %s/32 -m comment --comment \"bench/svc-%d:http\" -j KUBE-MARK-MASQ\n", i, backend.Addr(), i)
		fmt.Fprintf(&sb, "-A KUBE-SEP-%08X -p tcp -m comment --comment \"bench/svc-%d:http\" -m tcp -j DNAT --to-destination %s\n", i, i, backend)
	}
	sb.WriteString("COMMIT\n")
	file := filepath.Join(b.TempDir(), "rules")
	if err := os.WriteFile(file, []byte(sb.String()), 0o600); err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	if _, err := datapathtest.Run(ctx, ns, "", "iptables-restore", file); err != nil {
		b.Fatal(err)
	}
}

func pct(v []float64, p int) time.Duration {
	s := slices.Clone(v)
	slices.Sort(s)
	return time.Duration(s[len(s)*p/100])
}

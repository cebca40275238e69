package datapathbench

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/weftnet/weft/datapath"
	"github.com/weftnet/weft/datapath/datapathtest"
	"github.com/weftnet/weft/internal/testgate"
)

// BenchmarkLoadServices measures writing 10k ClusterIP services with two
// backends each into a fresh node's LB maps (goal: under a second).
func BenchmarkLoadServices(b *testing.B) {
	testgate.Root(b)
	const count = 10000
	for range b.N {
		lab := datapathtest.New(b, datapath.ModeNative, 1)
		dp := lab.Nodes[0].DP
		start := time.Now()
		for i := range count {
			svc := datapath.Service{
				Frontend: netip.AddrPortFrom(serviceIP(i), 80), Proto: datapath.ProtoTCP, Type: datapath.ClusterIP,
				Backends: []datapath.Backend{
					{Addr: netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 200, 1, byte(i)}), 8080)},
					{Addr: netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 200, 2, byte(i)}), 8080)},
				},
			}
			if err := dp.UpsertService(context.Background(), svc); err != nil {
				b.Fatal(err)
			}
		}
		d := time.Since(start)
		b.ReportMetric(float64(d.Milliseconds()), "load-10k-ms")
		b.Logf("10k services (2 backends each) loaded in %v", d)
	}
}

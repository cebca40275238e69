package bpf

import (
	"net/netip"
	"testing"

	"github.com/weftnet/weft/internal/testgate"
)

// BenchmarkFromContainer reports the run time of from_container on an
// established flow (BPF_PROG_TEST_RUN with repeat: the same skb again and
// again, so only paths that leave the packet as it is are meaningful).
func BenchmarkFromContainer(b *testing.B) {
	for _, tc := range []struct {
		name string
		mode uint32
		dst  string
	}{
		{"local", ModeTunnel, "10.1.0.2"},
		{"tunnel", ModeTunnel, "10.2.0.2"},
		{"native", ModeNative, "10.2.0.2"},
	} {
		b.Run(tc.name, func(b *testing.B) {
			testgate.Root(b)
			objs, err := Load("")
			if err != nil {
				b.Fatal(err)
			}
			defer objs.Close()
			put := func(err error) {
				if err != nil {
					b.Fatal(err)
				}
			}
			src, _ := netip.ParseAddr("10.1.0.1")
			dst, _ := netip.ParseAddr(tc.dst)
			put(objs.WeftEndpoints.Put(NewEndpointKey(src), EndpointInfo{Ifindex: 1, Identity: 1001, Id: 1}))
			if tc.name == "local" {
				put(objs.WeftEndpoints.Put(NewEndpointKey(dst), EndpointInfo{Ifindex: 1, Identity: 1002, Id: 2}))
			}
			_, ep := Addr16(netip.MustParseAddr("192.168.0.2"))
			put(objs.WeftIpcache.Put(NewIPCacheKey(netip.PrefixFrom(dst, 32)), IPCacheValue{Identity: 1002, TunnelFamily: FamilyIPv4, TunnelEndpoint: ep}))
			put(objs.WeftConfig.Put(uint32(0), Config{Mode: tc.mode, TunnelIfindex: 1}))
			frame := packet{src: netip.AddrPortFrom(src, 40000), dst: netip.AddrPortFrom(dst, 80), proto: protoTCP, payload: make([]byte, 1400)}.bytes()
			if _, _, err := objs.FromContainer.Benchmark(frame, 1, nil); err != nil { // opens the flow
				b.Fatal(err)
			}
			b.ResetTimer()
			ret, d, err := objs.FromContainer.Benchmark(frame, b.N, nil)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(d.Nanoseconds()), "ns/skb")
			b.ReportMetric(float64(ret), "verdict")
		})
	}
}

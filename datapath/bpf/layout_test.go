package bpf

import (
	"net/netip"
	"testing"
)

func TestKeysRoundTrip(t *testing.T) {
	for _, p := range []string{"10.1.2.3/32", "10.0.0.0/8", "0.0.0.0/0", "fd00::1/128", "fd00::/64"} {
		t.Run(p, func(t *testing.T) {
			want := netip.MustParsePrefix(p)
			k := NewIPCacheKey(want)
			if got := k.Prefix(); got != want {
				t.Fatalf("prefix %v came back as %v", want, got)
			}
			if int(k.Prefixlen) != 32+want.Bits() {
				t.Fatalf("prefixlen %d, want 32 (family, pad) + %d", k.Prefixlen, want.Bits())
			}
		})
	}
	k := NewServiceKey(netip.MustParseAddrPort("10.96.0.10:80"), 6)
	if k.Port != 0x5000 || k.Family != FamilyIPv4 || k.Addr != [16]byte{10, 96, 0, 10} {
		t.Fatalf("service key %+v: want port 80 in network order, IPv4 address in the first 4 bytes", k)
	}
	if a := AddrFrom16(Addr16(netip.MustParseAddr("::ffff:10.0.0.1"))); a != netip.MustParseAddr("10.0.0.1") {
		t.Fatalf("an IPv4-mapped address came back as %v, want it unmapped", a)
	}
}

package podcidr

import (
	"net/netip"
	"testing"
)

func TestSubnets(t *testing.T) {
	tests := []struct {
		pool  string
		mask  int
		i     uint64
		want  string
		count uint64
	}{
		{"10.100.0.0/16", 24, 0, "10.100.0.0/24", 256},
		{"10.100.0.0/16", 24, 255, "10.100.255.0/24", 256},
		{"10.100.0.0/16", 26, 5, "10.100.1.64/26", 1024},
		{"fd00:10::/48", 64, 3, "fd00:10:0:3::/64", 65536},
		{"fd00::/32", 112, 1, "fd00::1:0/112", 1 << 62},
	}
	for _, tc := range tests {
		t.Run(tc.want, func(t *testing.T) {
			p := netip.MustParsePrefix(tc.pool)
			if got := subnet(p, tc.mask, tc.i); got.String() != tc.want {
				t.Errorf("subnet(%s, /%d, %d) = %s, want %s", tc.pool, tc.mask, tc.i, got, tc.want)
			}
			if got := count(p, tc.mask); got != tc.count {
				t.Errorf("count(%s, /%d) = %d, want %d", tc.pool, tc.mask, got, tc.count)
			}
		})
	}
}

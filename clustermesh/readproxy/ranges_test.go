package readproxy

import "testing"

// TestCovered: a read is let through only when its whole key range lies
// inside one allowed range.
func TestCovered(t *testing.T) {
	p := &Proxy{o: Options{Ranges: []Range{
		{Key: "weft/cluster-config/c1"},
		{Key: "weft/state/nodes/v1/c1/", End: "weft/state/nodes/v1/c10"},
	}}}
	cases := []struct {
		name     string
		key, end string
		want     bool
	}{
		{"the single key", "weft/cluster-config/c1", "", true},
		{"the single key as a range", "weft/cluster-config/c1", "weft/cluster-config/c1\x00", true},
		{"a prefix of the single key", "weft/cluster-config/", "weft/cluster-config0", false},
		{"another cluster's config", "weft/cluster-config/c2", "", false},
		{"the whole prefix", "weft/state/nodes/v1/c1/", "weft/state/nodes/v1/c10", true},
		{"one node", "weft/state/nodes/v1/c1/n1", "", true},
		{"part of the prefix", "weft/state/nodes/v1/c1/a", "weft/state/nodes/v1/c1/m", true},
		{"past the prefix", "weft/state/nodes/v1/c1/", "weft/state/nodes/v1/c2", false},
		{"before the prefix", "weft/state/nodes/v1/", "weft/state/nodes/v1/c10", false},
		{"from a key on", "weft/state/nodes/v1/c1/", "\x00", false},
		{"everything", "\x00", "\x00", false},
		{"the range end itself", "weft/state/nodes/v1/c10", "", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := p.covered([]byte(tc.key), []byte(tc.end)); got != tc.want {
				t.Errorf("covered(%q, %q) = %v, want %v", tc.key, tc.end, got, tc.want)
			}
		})
	}
}

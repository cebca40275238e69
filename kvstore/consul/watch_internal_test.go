package consul

import "testing"

// TestNextIndex follows Consul's blocking-query guidance: an index that goes
// backwards resets to 0 (re-read everything), and 0 is never waited on.
func TestNextIndex(t *testing.T) {
	tests := []struct {
		name       string
		prev, last uint64
		want       uint64
	}{
		{"first listing", 0, 42, 42},
		{"grew", 42, 50, 50},
		{"unchanged after wait timeout", 50, 50, 50},
		{"went backwards after agent restart", 50, 7, 0},
		{"zero is clamped", 0, 0, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := nextIndex(tc.prev, tc.last); got != tc.want {
				t.Fatalf("nextIndex(%d, %d) = %d, want %d", tc.prev, tc.last, got, tc.want)
			}
		})
	}
}

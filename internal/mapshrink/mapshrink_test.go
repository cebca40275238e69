package mapshrink

import (
	"runtime"
	"testing"
)

// heapAfter is the live heap after a collection, with m still reachable.
func heapAfter(m map[uint32][64]byte) uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	runtime.KeepAlive(m)
	return ms.HeapAlloc
}

// TestShrinkReturnsMemory fills a map with 100k entries of 64 bytes (a
// table of about 8 MB), deletes them all and checks what is left of it,
// deleting with and without Shrink.
func TestShrinkReturnsMemory(t *testing.T) {
	const n = 100_000
	for _, tc := range []struct {
		name   string
		shrink bool
		// want says whether the heap after deleting is back within 1 MB
		// of the heap before the map was filled (without Shrink it is not,
		// which shows the test measures the table).
		want bool
	}{
		{name: "delete only keeps the table", shrink: false, want: false},
		{name: "shrink gives it back", shrink: true, want: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := map[uint32][64]byte{}
			base := heapAfter(m)
			for i := range uint32(n) {
				m[i] = [64]byte{}
			}
			full := heapAfter(m)
			peak := 0
			for i := range uint32(n) {
				delete(m, i)
				if tc.shrink {
					m = Shrink(m, &peak)
				}
			}
			if len(m) != 0 {
				t.Fatalf("%d entries left", len(m))
			}
			after := heapAfter(m)
			t.Logf("heap: %d before, %d full, %d after deleting", base, full, after)
			if full < base+4<<20 {
				t.Fatalf("filling the map grew the heap by %d bytes only; the test measures nothing", full-base)
			}
			got := after < base+1<<20
			if got && !tc.want {
				t.Logf("this Go gives a map's table back by itself; Shrink is not needed any more")
			} else if got != tc.want {
				t.Errorf("heap after deleting all = %d, before filling = %d: back within 1 MB = %v, want %v", after, base, got, tc.want)
			}
		})
	}
}

// TestShrinkKeepsEntries checks that the entries left survive every
// rebuild, whatever order the deletes come in.
func TestShrinkKeepsEntries(t *testing.T) {
	for _, tc := range []struct {
		name string
		keep func(i int) bool
	}{
		{name: "keep every tenth", keep: func(i int) bool { return i%10 == 0 }},
		{name: "keep the first hundred", keep: func(i int) bool { return i < 100 }},
		{name: "keep none", keep: func(int) bool { return false }},
		{name: "keep all", keep: func(int) bool { return true }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := map[int]string{}
			for i := range 1000 {
				m[i] = string(rune('a' + i%26))
			}
			peak := 0
			for i := 999; i >= 0; i-- {
				if !tc.keep(i) {
					delete(m, i)
					m = Shrink(m, &peak)
				}
			}
			for i := range 1000 {
				v, ok := m[i]
				if ok != tc.keep(i) || (ok && v != string(rune('a'+i%26))) {
					t.Fatalf("entry %d: %q, present %v; want present %v", i, v, ok, tc.keep(i))
				}
			}
		})
	}
}

// TestShrinkSmallMapUntouched: a map that never held minPeak entries is
// returned as it is.
func TestShrinkSmallMapUntouched(t *testing.T) {
	m := map[int]bool{}
	for i := range minPeak - 1 {
		m[i] = true
	}
	peak := 0
	for i := range minPeak - 1 {
		delete(m, i)
		m2 := Shrink(m, &peak)
		m2[-1] = true // visible through m only if m2 is m
		if !m[-1] {
			t.Fatalf("after %d deletes, Shrink rebuilt a map of at most %d entries", i+1, minPeak-1)
		}
		delete(m, -1)
	}
}

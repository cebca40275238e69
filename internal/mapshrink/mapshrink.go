package mapshrink

// minPeak is the size below which a map is never rebuilt: its table is
// small, and rebuilding would only cost time.
const minPeak = 64

// Shrink is called after deleting from m. It records the largest size m
// had in *peak and, once m holds a quarter of that or less, returns a copy
// sized to its entries (and resets *peak); otherwise it returns m. The
// copies cost amortised O(1) per delete. The caller stores the result in
// place of m and holds whatever lock guards m.
func Shrink[M ~map[K]V, K comparable, V any](m M, peak *int) M {
	*peak = max(*peak, len(m))
	if *peak < minPeak || len(m) > *peak/4 {
		return m
	}
	n := make(M, len(m))
	for k, v := range m {
		n[k] = v
	}
	*peak = len(m)
	return n
}

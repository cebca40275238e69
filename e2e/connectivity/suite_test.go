package connectivity

import (
	"errors"
	"strings"
	"testing"
)

func TestPrintSummary(t *testing.T) {
	tests := []struct {
		name    string
		results []Result
		want    []string
	}{
		{
			name:    "all passed",
			results: []Result{{Name: "a"}, {Name: "b"}},
			want:    []string{"✅ 2/2 tests successful"},
		},
		{
			name: "one failed with a two-line explanation",
			results: []Result{{Name: "a"}, {Name: "pod-to-pod/cross-node/tcp/x->y",
				Err: errors.New("TCP connection from pod x to pod y: connect failed\nsecond line")}},
			want: []string{"❌ 1/2 tests failed", "  ❌ pod-to-pod/cross-node/tcp/x->y:",
				"     TCP connection from pod x to pod y: connect failed", "     second line"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var b strings.Builder
			Report{Results: tc.results}.PrintSummary(&b)
			for _, w := range tc.want {
				if !strings.Contains(b.String(), w+"\n") {
					t.Errorf("summary %q lacks line %q", b.String(), w)
				}
			}
		})
	}
}

func TestExpectDropped(t *testing.T) {
	fx := &fixture{}
	if err := fx.expectDropped("probe", func() error { return nil }); err == nil || !strings.Contains(err.Error(), "got through, expected it dropped") {
		t.Errorf("a probe that got through: %v, expected an explained failure", err)
	}
	if err := fx.expectDropped("probe", func() error { return errors.New("timeout") }); err != nil {
		t.Errorf("a dropped probe: %v, expected success", err)
	}
}

package connectivity

import (
	"errors"
	"strings"
	"testing"
	"time"
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

func TestSelection(t *testing.T) {
	names := []string{"pod-to-pod/same-node/tcp/a->b", "pod-to-pod/cross-node/udp/a->c", "service/clusterip/tcp/a", "c2/pod-mtu/udp-1450/a->b"}
	for _, tc := range []struct {
		patterns []string
		want     []string
	}{
		{nil, names},
		{[]string{"pod-to-pod"}, names[:2]},
		{[]string{"!udp"}, []string{names[0], names[2]}},
		{[]string{"pod-to-pod", "service", "!cross-node"}, []string{names[0], names[2]}},
		{[]string{"^c2/"}, names[3:]},
	} {
		s, err := ParseSelection(tc.patterns)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, n := range names {
			if s.Match(n) {
				got = append(got, n)
			}
		}
		if strings.Join(got, " ") != strings.Join(tc.want, " ") {
			t.Errorf("--test %v selected %v, want %v", tc.patterns, got, tc.want)
		}
	}
	for _, bad := range []string{"!", "", "(", "!["} {
		if _, err := ParseSelection([]string{bad}); err == nil || !strings.Contains(err.Error(), "--test") {
			t.Errorf("--test %q: %v, want an error naming it", bad, err)
		}
	}
}

func TestResultsJSONAndJUnit(t *testing.T) {
	rep := Report{Results: []Result{
		{Name: "a", Run: 1, Duration: 1500 * time.Microsecond},
		{Name: "b->c", Run: 1, Err: errors.New("TCP connection from x to y: timeout")},
		{Name: "a", Run: 2},
	}}
	var js strings.Builder
	if err := rep.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	want := `{"name":"a","run":1,"result":"success","duration_ms":1.5}
{"name":"b->c","run":1,"result":"failure","duration_ms":0,"error":"TCP connection from x to y: timeout"}
{"name":"a","run":2,"result":"success","duration_ms":0}
`
	if js.String() != want {
		t.Errorf("JSON:\n%s\nwant\n%s", js.String(), want)
	}
	var x strings.Builder
	if err := rep.WriteJUnit(&x, "suite"); err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{`<testsuites tests="3" failures="1"`, `<testcase name="a (run 2)" classname="suite"`,
		`<failure message="scenario failed">TCP connection from x to y: timeout</failure>`} {
		if !strings.Contains(x.String(), w) {
			t.Errorf("JUnit XML lacks %q:\n%s", w, x.String())
		}
	}
}

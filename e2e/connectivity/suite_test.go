package connectivity

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/weftnet/weft/policy"
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
			name:    "skipped tests are counted apart",
			results: []Result{{Name: "a"}, {Name: "to-fqdns", Skipped: "not built"}},
			want:    []string{"✅ 1/1 tests successful (1 tests skipped: weft connectivity test --list says why)"},
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

func TestExpectDenied(t *testing.T) {
	fx := &fixture{}
	err := fx.expectDenied("echo-ingress", "probe", func() error { return nil })
	if err == nil || !strings.Contains(err.Error(), "got through, expected it dropped by the policy of test echo-ingress") ||
		!strings.Contains(err.Error(), "name: weft-cx-echo-ingress") {
		t.Errorf("a probe that got through: %v, expected an explained failure showing the policy", err)
	}
	if err := fx.expectDenied("echo-ingress", "probe", func() error { return errors.New("timeout") }); err != nil {
		t.Errorf("a dropped probe: %v, expected success", err)
	}
}

// TestCatalogue: every policy test's documents are policies Weft accepts,
// names are unique, and every test is described or skipped with a reason.
func TestCatalogue(t *testing.T) {
	seen := map[string]bool{}
	for _, e := range Catalogue() {
		if seen[e.Name] {
			t.Errorf("test %s is listed twice", e.Name)
		}
		seen[e.Name] = true
		if (e.What == "") == (e.Skip == "") {
			t.Errorf("test %s: give either what it proves or why it is skipped: %+v", e.Name, e)
		}
	}
	for _, pt := range policyTests() {
		ps, err := policy.ParseIn([]byte(pt.docs), kubeNamespace)
		if err != nil {
			t.Errorf("test %s: its policy is refused: %v\n%s", pt.name, err, pt.docs)
			continue
		}
		if len(pt.enforce) == 0 {
			t.Errorf("test %s waits for no enforcement", pt.name)
		}
		for _, p := range ps {
			// Imported into the test pods' namespace: the documents name none.
			if p.Namespace != kubeNamespace || !strings.HasPrefix(p.Name, "weft-cx-") {
				t.Errorf("test %s: policy %s, want weft-cx-* in the namespace it is imported into, %s (deleted by name after the test)", pt.name, p.ID(), kubeNamespace)
			}
		}
	}
}

func TestSelection(t *testing.T) {
	names := []string{"no-policies/pod-to-pod/same-node/tcp/a->b", "no-policies/pod-to-pod/cross-node/udp/a->c", "no-policies/pod-to-service/clusterip/tcp/a", "c2/pod-mtu/udp-1450/a->b"}
	for _, tc := range []struct {
		patterns []string
		want     []string
	}{
		{nil, names},
		{[]string{"pod-to-pod"}, names[:2]},
		{[]string{"!udp"}, []string{names[0], names[2]}},
		{[]string{"pod-to-pod", "pod-to-service", "!cross-node"}, []string{names[0], names[2]}},
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
		{Name: "to-fqdns", Skipped: "FQDN policy is not built"},
	}}
	var js strings.Builder
	if err := rep.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	want := `{"name":"a","run":1,"result":"success","duration_ms":1.5}
{"name":"b->c","run":1,"result":"failure","duration_ms":0,"error":"TCP connection from x to y: timeout"}
{"name":"a","run":2,"result":"success","duration_ms":0}
{"name":"to-fqdns","run":1,"result":"skipped","duration_ms":0,"reason":"FQDN policy is not built"}
`
	if js.String() != want {
		t.Errorf("JSON:\n%s\nwant\n%s", js.String(), want)
	}
	var x strings.Builder
	if err := rep.WriteJUnit(&x, "suite"); err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{`<testsuites tests="4" failures="1" skipped="1"`, `<testcase name="a (run 2)" classname="suite"`,
		`<skipped message="FQDN policy is not built"></skipped>`,
		`<failure message="scenario failed">TCP connection from x to y: timeout</failure>`} {
		if !strings.Contains(x.String(), w) {
			t.Errorf("JUnit XML lacks %q:\n%s", w, x.String())
		}
	}
}

// TestCatalogueDocumented: docs/connectivity.md lists every test of the
// catalogue with what it checks or why it is skipped, as --list prints it.
func TestCatalogueDocumented(t *testing.T) {
	b, err := os.ReadFile("../../docs/connectivity.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	for _, e := range Catalogue() {
		runs, text := "yes", e.What
		if e.Skip != "" {
			runs, text = "skipped", e.Skip
		}
		if row := fmt.Sprintf("| `%s` | %s | %s |", e.Name, runs, text); !strings.Contains(doc, row) {
			t.Errorf("docs/connectivity.md lacks the row\n%s\n(regenerate the table from weft connectivity test --list -o json)", row)
		}
	}
}

package deploy_test

import (
	"bytes"
	"context"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/weftnet/weft/cli"
	"github.com/weftnet/weft/deploy"
	"github.com/weftnet/weft/internal/testgate"
	"github.com/weftnet/weft/internal/toolcache"
)

// weftInstallDryRun runs `weft install --dry-run` with the chart built
// into weft (package deploy's embed) and returns what it prints.
func weftInstallDryRun(t *testing.T, args ...string) string {
	t.Helper()
	root := cli.NewRootCommand("test", cli.WithChart(deploy.Chart()))
	var out, errb bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errb)
	root.SetArgs(append([]string{"install", "--dry-run", "--namespace", namespace}, args...))
	if err := root.ExecuteContext(context.Background()); err != nil {
		t.Fatalf("weft install --dry-run %v: %v\n%s", args, err, errb.String())
	}
	return out.String()
}

// TestInstallDryRunMatchesChart: `weft install --dry-run` prints what helm
// template prints for the same values: the install flags set the values
// they document, --set and -f work as in helm, and the chart built into
// weft is the chart of this commit, rendered the same way.
func TestInstallDryRunMatchesChart(t *testing.T) {
	testgate.Short(t)
	helm := tool(t, toolcache.Helm())
	for name, tc := range map[string]struct {
		args []string // weft install's
		set  []string // the same values for helm template
	}{
		"flags": {
			args: []string{"--cluster-name", "east", "--cluster-id", "7", "--routing", "native",
				"--kvstore-endpoints", "https://10.0.0.5:2379,https://10.0.0.6:2379", "--set", "store.tlsSecret=etcd-client"},
			set: variants["tls"],
		},
		"consul": {
			args: []string{"--kvstore", "consul", "--kvstore-endpoints", "http://10.0.0.5:8500", "--set", "store.consulTokenSecret=consul-token",
				"--set", "agent.privileged=false", "--set", "agent.flows.enabled=false"},
			set: variants["consul"],
		},
		"set": {args: []string{"--set", "store.endpoints={http://10.0.0.5:2379}", "--set", "apiserver.enabled=false"},
			set: []string{"store.endpoints={http://10.0.0.5:2379}", "apiserver.enabled=false"}},
	} {
		t.Run(name, func(t *testing.T) {
			want, err := render(t, helm, tc.set...)
			if err != nil {
				t.Fatalf("helm template: %v\n%s", err, want)
			}
			got := weftInstallDryRun(t, tc.args...)
			// helm template without --include-crds: the same from the first template on.
			i := strings.Index(got, "---\n# Source: weft/templates/")
			if !strings.HasPrefix(got, "---\n# Source: weft/crds/") || i < 0 {
				t.Fatalf("weft install --dry-run does not print the CRDs, then the templates:\n%s", got)
			}
			if docs(got[i:]) != docs(want) {
				t.Errorf("weft install --dry-run %v differs from helm template --set %v:\n%s", tc.args, tc.set, lineDiff(docs(got[i:]), docs(want)))
			}
		})
	}
	// deploy/manifests/weft.yaml is helm template --include-crds with
	// manifests/values.yaml (TestManifestsCurrent), after two comment lines.
	t.Run("values file", func(t *testing.T) {
		got := weftInstallDryRun(t, "-f", "manifests/values.yaml")
		b, err := os.ReadFile("manifests/weft.yaml")
		if err != nil {
			t.Fatal(err)
		}
		want := strings.SplitN(string(b), "\n", 3)[2]
		if docs(got) != docs(want) {
			t.Errorf("weft install --dry-run -f manifests/values.yaml differs from deploy/manifests/weft.yaml:\n%s", lineDiff(docs(got), docs(want)))
		}
	})
}

// docs normalises the whitespace around each YAML document: helm v3's
// renderer (the SDK weft uses) trims every document, helm v4 (the tool
// cache's helm) keeps a template's trailing newline, which prints as a
// blank line before the next "---". Nothing else is allowed to differ.
func docs(manifest string) string {
	var out []string
	for _, d := range strings.Split(manifest, "\n---\n") {
		out = append(out, strings.TrimSpace(d))
	}
	return strings.Join(out, "\n---\n") + "\n"
}

// lineDiff shows the first line where two texts differ, with context.
func lineDiff(got, want string) string {
	g, w := strings.Split(got, "\n"), strings.Split(want, "\n")
	for i := 0; i < len(g) || i < len(w); i++ {
		if i >= len(g) || i >= len(w) || g[i] != w[i] {
			from := max(0, i-3)
			return "weft install, from line " + strconv.Itoa(from+1) + ":\n" + strings.Join(g[from:min(len(g), i+3)], "\n") +
				"\nhelm:\n" + strings.Join(w[from:min(len(w), i+3)], "\n")
		}
	}
	return "(no line differs)"
}

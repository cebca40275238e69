package layers

import (
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

const module = "github.com/weftnet/weft/"

// layers lists every package folder (a prefix: "agent/" is every package
// below agent, "agent" the root package itself) with its layer. Lower
// layers never import higher ones. A new package must be placed here.
var layers = []struct {
	prefix string
	layer  int
}{
	{"internal/", 0}, {"api/", 0},
	{"kvstore", 1}, {"kvstore/", 1},
	{"state/", 2},
	{"datapath", 3}, {"datapath/", 3},
	{"policy", 4}, {"services", 4}, {"clustermesh", 4},
	{"flow", 4}, {"flow/", 4}, {"fqdn", 4}, {"preflight", 4},
	{"agent/", 5}, {"clustermesh/", 5}, {"k8s", 5}, {"k8s/", 5}, {"relay", 5}, {"relay/", 5}, {"proxy", 5}, {"proxy/", 5},
	{"agent", 6}, {"cni", 6}, {"testenv", 6}, {"testenv/", 6}, {"e2e/connectivity", 6},
	{"cli", 7}, {"cli/", 7},
	{"cmd/", 8}, {"e2e", 8}, {"bench/", 8}, {"hack/", 8}, {"deploy", 8},
}

// layerOf returns the layer of a package path relative to the module, the
// longest matching prefix winning; ok is false for an unplaced package.
func layerOf(pkg string) (layer int, ok bool) {
	best := -1
	for _, l := range layers {
		match := pkg == l.prefix || (strings.HasSuffix(l.prefix, "/") && strings.HasPrefix(pkg, l.prefix))
		if match && len(l.prefix) > best {
			best, layer, ok = len(l.prefix), l.layer, true
		}
	}
	return layer, ok
}

func TestNoPackageImportsAbove(t *testing.T) {
	_, self, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(self), "..", "..")
	cmd := exec.Command(filepath.Join(runtime.GOROOT(), "bin", "go"), "list", "-test=false",
		"-f", `{{.ImportPath}} {{join .Imports " "}} {{join .TestImports " "}} {{join .XTestImports " "}}`, "./...")
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		fields := strings.Fields(line)
		pkg, ok := strings.CutPrefix(fields[0], module)
		if !ok {
			continue
		}
		from, ok := layerOf(pkg)
		if !ok {
			t.Errorf("package %s has no layer: place it in internal/layers", pkg)
			continue
		}
		for _, imp := range fields[1:] {
			dep, ok := strings.CutPrefix(imp, module)
			if !ok || dep == pkg {
				continue
			}
			to, ok := layerOf(dep)
			if ok && to > from {
				t.Errorf("%s (layer %d) imports %s (layer %d), a layer above it", pkg, from, dep, to)
			}
		}
	}
}

func TestLayerOf(t *testing.T) {
	for pkg, want := range map[string]int{
		"agent": 6, "agent/policy": 5, "agent/ingress": 5, "proxy/ingress": 5, "kvstore": 1, "kvstore/etcd": 1, "datapath/bpf": 3,
		"clustermesh": 4, "clustermesh/apiserver": 5, "e2e": 8, "e2e/connectivity": 6, "cmd/weft": 8,
		"agent/l7lb": 5, "proxy/l7lb": 5, "internal/yamldocs": 0,
	} {
		if got, ok := layerOf(pkg); !ok || got != want {
			t.Errorf("layerOf(%s) = %d, %v; want %d", pkg, got, ok, want)
		}
	}
	if _, ok := layerOf("util"); ok {
		t.Error("an unplaced package got a layer")
	}
}

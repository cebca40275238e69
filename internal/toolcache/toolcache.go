package toolcache

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/weftnet/weft/internal/flock"
)

// Tool describes how to build one external program from the Go module proxy.
type Tool struct {
	Name    string   // binary name, e.g. "consul"
	Version string   // pinned module version; part of the cache key
	GoMod   string   // go.mod body of the throwaway module, after its module line
	Get     []string // module@version arguments for `go get`
	Package string   // import path to build
	LDFlags string
	// Group names the cache directory (default Name). Tools of one group are
	// built together from one throwaway module; Also lists the other
	// programs of the group (binary name → import path), built next to Name.
	Group string
	Also  map[string]string
	// Files are extra source files of the throwaway module (name → body),
	// e.g. a tools.go importing what `go mod tidy` must keep.
	Files map[string]string
	// CGO builds with cgo (a C compiler must be installed); tools are
	// otherwise static.
	CGO bool
}

// Consul is a real Consul agent. v1.22.7 needs a newer api module than its own
// go.mod asks for, and consul's msgpack excludes repeated (see shared/RECIPES.md).
func Consul() Tool {
	return Tool{
		Name:    "consul",
		Version: "v1.22.7",
		GoMod: "go 1.26\n\nexclude (\n\tgithub.com/hashicorp/go-msgpack v1.1.5\n" +
			"\tgithub.com/hashicorp/go-msgpack v1.1.6\n)\n",
		Get:     []string{"github.com/hashicorp/consul@v1.22.7", "github.com/hashicorp/consul/api@v1.34.1"},
		Package: "github.com/hashicorp/consul",
		LDFlags: "-s -w",
	}
}

// Etcd is a standalone etcd server binary, for multi-process fault tests and
// for kube-apiserver.
func Etcd() Tool {
	return Tool{
		Name:    "etcd",
		Version: "v3.6.5",
		GoMod:   "go 1.26\n",
		Get:     []string{"go.etcd.io/etcd/server/v3@v3.6.5"},
		Package: "go.etcd.io/etcd/server/v3",
		LDFlags: "-s -w",
	}
}

// CNITool is the upstream cnitool, a minimal CNI runtime: it drives
// weft-cni's ADD, CHECK and DEL in tests.
func CNITool() Tool {
	return Tool{
		Name:    "cnitool",
		Version: "v1.3.0",
		GoMod:   "go 1.26\n",
		Get:     []string{"github.com/containernetworking/cni@v1.3.0"},
		Package: "github.com/containernetworking/cni/cnitool",
		LDFlags: "-s -w",
	}
}

// Helm renders and lints deploy/helm/weft (v4: the release of
// shared/RECIPES.md; v3.22.0 is served but not an approved release).
func Helm() Tool {
	return Tool{
		Name:    "helm",
		Version: "v4.3.2",
		GoMod:   "go 1.26\n",
		Get:     []string{"helm.sh/helm/v4@v4.3.2"},
		Package: "helm.sh/helm/v4/cmd/helm",
		LDFlags: "-s -w -X helm.sh/helm/v4/internal/version.version=v4.3.2",
	}
}

// Flannel is flanneld, the peer fabric of the node-join benchmark (etcd
// backend, VXLAN). One of its dependencies must be pinned to a release the
// proxy serves, and its UDP backend needs cgo (see shared/RECIPES.md).
func Flannel() Tool {
	return Tool{
		Name:    "flanneld",
		Version: "v0.28.4",
		GoMod: "go 1.26\n\nreplace github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/common => " +
			"github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/common v1.3.103\n",
		Get:     []string{"github.com/flannel-io/flannel@v0.28.4"},
		Package: "github.com/flannel-io/flannel",
		LDFlags: "-s -w -X github.com/flannel-io/flannel/pkg/version.Version=v0.28.4",
		CGO:     true,
	}
}

// All lists every tool Lookup knows.
func All() []Tool {
	return []Tool{Consul(), Etcd(), CNITool(), KubeAPIServer(), Kubectl(), Helm(), Flannel()}
}

// Lookup returns the tool of that name.
func Lookup(name string) (Tool, error) {
	var names []string
	for _, t := range All() {
		if t.Name == name {
			return t, nil
		}
		names = append(names, t.Name)
	}
	return Tool{}, fmt.Errorf("unknown tool %q: accepted are %s", name, strings.Join(names, ", "))
}

// Dir is the cache root: $WEFT_TOOLS_DIR, else <user cache dir>/weft/tools.
func Dir() string {
	if d := os.Getenv("WEFT_TOOLS_DIR"); d != "" {
		return d
	}
	base, err := os.UserCacheDir()
	if err != nil {
		base = filepath.Join(os.TempDir(), "weft-cache")
	}
	return filepath.Join(base, "weft", "tools")
}

// Path is where the tool's binary lives once built.
func (t Tool) Path() string {
	return filepath.Join(t.dir(), t.Name)
}

func (t Tool) dir() string {
	group := t.Group
	if group == "" {
		group = t.Name
	}
	return filepath.Join(Dir(), group+"-"+t.Version)
}

// Ensure returns the path of the cached binary, building it first when it is
// missing. Concurrent callers (several test packages at once) serialise on a
// file lock so the tool is built once. Build output goes to progress.
func Ensure(ctx context.Context, t Tool, progress io.Writer) (string, error) {
	path := t.Path()
	if isExecutable(path) {
		return path, nil
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return "", fmt.Errorf("create tool cache: %w", err)
	}
	unlock, err := flock.Lock(filepath.Dir(path) + ".lock")
	if err != nil {
		return "", err
	}
	defer unlock()
	if isExecutable(path) { // built by another process while we waited
		return path, nil
	}
	if err := build(ctx, t, progress); err != nil {
		return "", fmt.Errorf("build %s %s: %w", t.Name, t.Version, err)
	}
	return path, nil
}

// build builds every program of t's group into its cache directory; each
// binary appears atomically (renamed from a .partial file).
func build(ctx context.Context, t Tool, progress io.Writer) error {
	work, err := os.MkdirTemp("", "weft-toolbuild-"+t.Name+"-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	gomod := "module weft.local/toolbuild/" + t.Name + "\n\n" + t.GoMod
	if err := os.WriteFile(filepath.Join(work, "go.mod"), []byte(gomod), 0o644); err != nil {
		return err
	}
	for name, body := range t.Files {
		if err := os.WriteFile(filepath.Join(work, name), []byte(body), 0o644); err != nil {
			return err
		}
	}
	fmt.Fprintf(progress, "toolcache: building %s %s into %s (first time only)\n", t.Name, t.Version, t.dir())
	gobin := goBinary()
	run := func(args ...string) error {
		cmd := exec.CommandContext(ctx, gobin, args...)
		cmd.Dir = work
		cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GOWORK=off", "CGO_ENABLED=0")
		if t.CGO {
			cmd.Env = append(cmd.Env, cgoEnv()...)
		}
		cmd.Stdout, cmd.Stderr = progress, progress
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("go %s: %w", strings.Join(args, " "), err)
		}
		return nil
	}
	if err := run(append([]string{"get"}, t.Get...)...); err != nil {
		return err
	}
	if len(t.Files) > 0 {
		if err := run("mod", "tidy"); err != nil {
			return err
		}
	}
	programs := map[string]string{t.Name: t.Package}
	for name, pkg := range t.Also {
		programs[name] = pkg
	}
	for name, pkg := range programs {
		dst := filepath.Join(t.dir(), name)
		if isExecutable(dst) {
			continue
		}
		tmp := dst + ".partial"
		if err := run("build", "-trimpath", "-ldflags="+t.LDFlags, "-o", tmp, pkg); err != nil {
			return err
		}
		if err := os.Rename(tmp, dst); err != nil {
			return err
		}
	}
	return nil
}

// cgoEnv enables cgo with gcc, or with clang (which `make deps` installs
// for the BPF programs) where gcc is missing.
func cgoEnv() []string {
	env := []string{"CGO_ENABLED=1"}
	if _, err := exec.LookPath("gcc"); err != nil && os.Getenv("CC") == "" {
		env = append(env, "CC=clang")
	}
	return env
}

func goBinary() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return "/usr/local/go/bin/go"
}

func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

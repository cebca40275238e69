package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestInstallCNI: a good configuration list installs weft-cni and the list
// (again: same files); a bad one is refused with the reason and changes
// nothing already installed.
func TestInstallCNI(t *testing.T) {
	dir := t.TempDir()
	bin, conf := filepath.Join(dir, "bin"), filepath.Join(dir, "net.d")
	fakeCNI := filepath.Join(dir, "weft-cni")
	if err := os.WriteFile(fakeCNI, []byte("#!/bin/true\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	good := `{"cniVersion":"1.0.0","name":"weft","plugins":[{"type":"weft-cni","agentSocket":"/var/run/weft/agent.sock"}]}`
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	install := func(conflist string) result {
		return runCLI(t, dir, nil, "install-cni", "--bin-dir", bin, "--conf-dir", conf, "--conflist", conflist, "--cni-binary", fakeCNI)
	}
	for range 2 { // idempotent
		if r := install(write("good.conflist", good)); r.err != nil {
			t.Fatalf("install: %v\n%s", r.err, r.stderr)
		}
		if b, err := os.ReadFile(filepath.Join(conf, "05-weft.conflist")); err != nil || string(b) != good {
			t.Fatalf("installed list %q (%v)", b, err)
		}
		if fi, err := os.Stat(filepath.Join(bin, "weft-cni")); err != nil || fi.Mode()&0o111 == 0 {
			t.Fatalf("weft-cni not installed executable: %v", err)
		}
	}
	for _, tc := range []struct{ name, body, want string }{
		{"not JSON", "{", "not JSON"},
		{"no weft-cni", `{"cniVersion":"1.0.0","name":"weft","plugins":[{"type":"bridge"}]}`, "no plugin of type weft-cni"},
		{"bad plugin setting", `{"cniVersion":"1.0.0","name":"weft","plugins":[{"type":"weft-cni","agentSocket":7}]}`, "weft-cni plugin"},
	} {
		r := install(write("bad.conflist", tc.body))
		if r.err == nil || !strings.Contains(r.err.Error(), tc.want) || !strings.Contains(r.err.Error(), "nothing was installed") {
			t.Errorf("%s: err %v, want one naming %q and that nothing was installed", tc.name, r.err, tc.want)
		}
		if b, _ := os.ReadFile(filepath.Join(conf, "05-weft.conflist")); string(b) != good {
			t.Errorf("%s: the installed list changed to %q", tc.name, b)
		}
	}
}

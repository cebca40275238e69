package cli

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
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

// TestMeshCopyDir: the chart's apiserver init container copies the
// mounted Secret's files (not its hidden ..data entries) into a writable
// directory, keys 0600; --chown hands them to the apiserver's user; a bad
// --chown is refused before anything is copied.
func TestMeshCopyDir(t *testing.T) {
	dir := t.TempDir()
	from, to := filepath.Join(dir, "secret"), filepath.Join(dir, "clustermesh", "c1")
	for name, body := range map[string]string{"ca.crt": "ca", "agent.key": "key", "..data/x": "hidden"} {
		p := filepath.Join(from, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if r := runCLI(t, dir, nil, "clustermesh", "copy-dir", "--from", from, "--to", to, "--chown", "65532"); r.err == nil ||
		!strings.Contains(r.err.Error(), `--chown "65532": want numeric UID:GID`) {
		t.Fatalf("a bad --chown: want a refusal, got %v", r.err)
	}
	if _, err := os.Stat(to); err == nil {
		t.Fatal("a refused copy-dir created --to")
	}
	r := runCLI(t, dir, nil, "clustermesh", "copy-dir", "--from", from, "--to", to, "--chown", "65532:65533")
	if r.err != nil {
		t.Fatal(r.err)
	}
	wantContains(t, "copy-dir", r.stdout, "copied 2 files into "+to+", owned by 65532:65533")
	for name, mode := range map[string]os.FileMode{"ca.crt": 0o644, "agent.key": 0o600, ".": 0o700} {
		fi, err := os.Stat(filepath.Join(to, name))
		if err != nil {
			t.Fatal(err)
		}
		st := fi.Sys().(*syscall.Stat_t)
		if fi.Mode().Perm() != mode || st.Uid != 65532 || st.Gid != 65533 {
			t.Errorf("%s: mode %v owner %d:%d, want %v 65532:65533", name, fi.Mode().Perm(), st.Uid, st.Gid, mode)
		}
	}
	if _, err := os.Stat(filepath.Join(to, "..data")); err == nil {
		t.Error("copy-dir copied the Secret's hidden ..data")
	}
}

package e2e

import (
	"bytes"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/weftnet/weft/internal/testgate"
)

// tree lists every path under root, relative to it.
func tree(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(root, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if rel, _ := filepath.Rel(root, p); rel != "." {
			out = append(out, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func makeIn(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.Command("make", append([]string{"-C", ".."}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("make %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// TestMakeInstall: `make install DESTDIR=…` writes the binaries, weft-cni,
// the units (which `systemd-analyze verify` accepts, their ExecStart
// pointing at the installed binaries), the CNI conflist and the config
// examples; it keeps an existing conflist; `make uninstall` removes exactly
// what install wrote, leaving an empty tree (or only the kept conflist).
func TestMakeInstall(t *testing.T) {
	testgate.Short(t)
	if _, err := exec.LookPath("systemd-analyze"); err != nil {
		testgate.Skip(t, "systemd-analyze missing (Debian package systemd, installed by make deps)")
	}
	t.Run("empty tree", func(t *testing.T) {
		dest := t.TempDir()
		makeIn(t, "install", "DESTDIR="+dest)
		got := tree(t, dest)
		for _, want := range []string{"usr/local/bin/weft", "usr/local/bin/weft-agent", "usr/local/bin/weft-apiserver",
			"opt/cni/bin/weft-cni", "etc/systemd/system/weft-agent.service", "etc/systemd/system/weft-apiserver.service",
			"etc/cni/net.d/10-weft.conflist", "etc/weft/agent.yaml", "etc/weft/agent.env", "etc/weft/apiserver.yaml"} {
			if !slices.Contains(got, want) {
				t.Errorf("make install did not write %s (wrote %v)", want, got)
			}
		}
		// Verify the installed units as they would run: ExecStart resolved
		// under DESTDIR.
		units := t.TempDir()
		var paths []string
		for _, u := range []string{"weft-agent.service", "weft-apiserver.service"} {
			raw, err := os.ReadFile(filepath.Join(dest, "etc/systemd/system", u))
			if err != nil {
				t.Fatal(err)
			}
			p := filepath.Join(units, u)
			if err := os.WriteFile(p, bytes.ReplaceAll(raw, []byte("/usr/local/bin/"), []byte(dest+"/usr/local/bin/")), 0o644); err != nil {
				t.Fatal(err)
			}
			paths = append(paths, p)
		}
		out, err := exec.Command("systemd-analyze", append([]string{"verify"}, paths...)...).CombinedOutput()
		if err != nil || len(bytes.TrimSpace(out)) > 0 {
			t.Errorf("systemd-analyze verify: %v\n%s", err, out)
		}
		makeIn(t, "uninstall", "DESTDIR="+dest)
		if left := tree(t, dest); len(left) > 0 {
			t.Errorf("left behind by make uninstall: %v", left)
		}
	})
	t.Run("existing conflist", func(t *testing.T) {
		dest := t.TempDir()
		conf := filepath.Join(dest, "etc/cni/net.d/10-weft.conflist")
		if err := os.MkdirAll(filepath.Dir(conf), 0o755); err != nil {
			t.Fatal(err)
		}
		mine := []byte(`{"cniVersion": "1.0.0", "name": "mine", "plugins": [{"type": "bridge"}]}`)
		if err := os.WriteFile(conf, mine, 0o644); err != nil {
			t.Fatal(err)
		}
		if out := makeIn(t, "install", "DESTDIR="+dest); !strings.Contains(out, "kept existing "+conf+" (FORCE=1 replaces it") {
			t.Errorf("make install says nothing about the existing conflist:\n%s", out)
		}
		makeIn(t, "uninstall", "DESTDIR="+dest)
		if got, _ := os.ReadFile(conf); !bytes.Equal(got, mine) {
			t.Errorf("the existing conflist changed: %s", got)
		}
		if left := tree(t, dest); !slices.Equal(left, []string{"etc", "etc/cni", "etc/cni/net.d", "etc/cni/net.d/10-weft.conflist"}) {
			t.Errorf("after install and uninstall over an existing conflist: %v, want only it", left)
		}
		makeIn(t, "install", "DESTDIR="+dest, "FORCE=1")
		if got, _ := os.ReadFile(conf); bytes.Equal(got, mine) {
			t.Error("FORCE=1 did not replace the conflist")
		}
		makeIn(t, "uninstall", "DESTDIR="+dest)
		if left := tree(t, dest); !slices.Equal(left, []string{"etc", "etc/cni", "etc/cni/net.d"}) {
			t.Errorf("after FORCE=1 install and uninstall: %v, want the directories that were there", left)
		}
	})
}

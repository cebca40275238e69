package bpf

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/weftnet/weft/internal/hosttest"
	"github.com/weftnet/weft/internal/testgate"
)

// mountsAt counts the mounts on dir in the calling thread's namespace.
func mountsAt(t *testing.T, dir string) int {
	t.Helper()
	b, err := os.ReadFile("/proc/thread-self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) > 4 && f[4] == dir {
			n++
		}
	}
	return n
}

// TestEnsureFS: in a private mount namespace, EnsureFS mounts bpffs at
// /sys/fs/bpf when it is the plain sysfs directory of a fresh host (a pin
// directory below it cannot even be created then), only creates the
// directory when bpffs is there, and mounts on a directory of its own
// elsewhere. The namespace, and what was mounted in it, vanish afterwards.
func TestEnsureFS(t *testing.T) {
	testgate.Root(t)
	for _, tc := range []struct {
		name       string
		mounted    bool   // a bpffs is at /sys/fs/bpf before EnsureFS
		dir        string // "" : a directory under t.TempDir()
		wantMounts int    // at the mount point afterwards
	}{
		{name: "fresh host", dir: DefaultFS + "/weft-ensurefs", wantMounts: 1},
		{name: "fresh host, the root itself", dir: DefaultFS, wantMounts: 1},
		{name: "mounted", mounted: true, dir: DefaultFS + "/weft-ensurefs/a", wantMounts: 1},
		{name: "own directory", dir: "", wantMounts: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir, at := tc.dir, DefaultFS
			if dir == "" {
				dir = filepath.Join(t.TempDir(), "bpf")
				at = dir
			}
			err := hosttest.InPrivateMounts(func() error {
				if err := hosttest.UnmountAll(DefaultFS); err != nil {
					return err
				}
				if IsFS(DefaultFS) {
					t.Errorf("%s is still a bpffs after unmounting", DefaultFS)
				}
				if tc.mounted {
					if err := hosttest.MountBPFFS(DefaultFS); err != nil {
						return err
					}
				}
				if err := EnsureFS(dir); err != nil {
					return err
				}
				if !IsFS(dir) {
					t.Errorf("%s is not on a bpffs after EnsureFS", dir)
				}
				if n := mountsAt(t, at); n != tc.wantMounts {
					t.Errorf("%d mounts at %s, want %d", n, at, tc.wantMounts)
				}
				if err := EnsureFS(dir); err != nil { // idempotent
					return err
				}
				if n := mountsAt(t, at); n != tc.wantMounts {
					t.Errorf("second EnsureFS: %d mounts at %s, want %d", n, at, tc.wantMounts)
				}
				return hosttest.UnmountAll(at)
			})
			if err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestEnsureCgroup2: with no cgroup v2 mounted, EnsureCgroup2 mounts one
// at the first candidate it can create; with one mounted it finds it.
func TestEnsureCgroup2(t *testing.T) {
	testgate.Root(t)
	found := FindCgroup2()
	if found == "" {
		t.Fatalf("no cgroup2 hierarchy on this host at %v", Cgroup2Candidates)
	}
	err := hosttest.InPrivateMounts(func() error {
		if p, err := EnsureCgroup2(); err != nil || p != found {
			t.Errorf("EnsureCgroup2 with %s mounted: %q, %v", found, p, err)
		}
		if err := hosttest.UnmountAll(found); err != nil {
			return err
		}
		if p := FindCgroup2(); p != "" {
			t.Errorf("still a cgroup2 at %s after unmounting %s", p, found)
		}
		p, err := EnsureCgroup2()
		if err != nil {
			return err
		}
		if !IsCgroup2(p) {
			t.Errorf("EnsureCgroup2 returned %s, not a cgroup2", p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

package bpf

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// DefaultFS is where bpffs is mounted on a standard host.
const DefaultFS = "/sys/fs/bpf"

// Cgroup2Candidates are where a cgroup v2 hierarchy is looked for, in
// order: the unified hierarchy of a hybrid host, then the pure v2 mount.
var Cgroup2Candidates = []string{"/sys/fs/cgroup/unified", "/sys/fs/cgroup"}

// IsFS reports whether dir is on a bpffs (false when dir does not exist).
func IsFS(dir string) bool { return fsType(dir) == unix.BPF_FS_MAGIC }

// IsCgroup2 reports whether dir is on a cgroup v2 hierarchy.
func IsCgroup2(dir string) bool { return fsType(dir) == unix.CGROUP2_SUPER_MAGIC }

func fsType(dir string) int64 {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return 0
	}
	return int64(st.Type) //nolint:unconvert // the field's type differs between architectures
}

// EnsureFS makes sure dir exists on a bpffs, mounting one when needed: pins
// need it and many hosts boot without it. If dir lies under a bpffs it is
// only created. Otherwise bpffs is mounted at DefaultFS when dir is below
// DefaultFS (the directory the kernel provides as a mount point, where
// nothing can be created until bpffs is there), else at dir itself.
func EnsureFS(dir string) error {
	dir = filepath.Clean(dir)
	if IsFS(dir) {
		return nil
	}
	if _, err := os.Stat(dir); err == nil || !errors.Is(err, os.ErrNotExist) {
		return mountFS(dir) // exists (or cannot be looked at): mount right there
	}
	if IsFS(existingAncestor(dir)) {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("create %s: %w", dir, err)
		}
		return nil
	}
	at := dir
	if rel, err := filepath.Rel(DefaultFS, dir); err == nil && filepath.IsLocal(rel) {
		at = DefaultFS
	}
	if err := os.MkdirAll(at, 0o755); err != nil {
		return fmt.Errorf("create bpffs mount point %s: %w", at, err)
	}
	if err := mountFS(at); err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	return nil
}

func mountFS(at string) error {
	if err := unix.Mount("bpf", at, "bpf", 0, "mode=0700"); err != nil {
		return fmt.Errorf("mount bpffs at %s: %w (as root: mount -t bpf bpf %s)", at, err, at)
	}
	return nil
}

// existingAncestor is the closest existing directory at or above dir.
func existingAncestor(dir string) string {
	for {
		if _, err := os.Stat(dir); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return dir
		}
		dir = parent
	}
}

// FindCgroup2 returns the first of Cgroup2Candidates that is a cgroup v2
// hierarchy, "" when none is.
func FindCgroup2() string {
	for _, p := range Cgroup2Candidates {
		if IsCgroup2(p) {
			return p
		}
	}
	return ""
}

// EnsureCgroup2 returns a cgroup v2 hierarchy, mounting one at
// /sys/fs/cgroup/unified (creating the directory on the cgroup v1 tmpfs)
// when the host has none: the socket load balancer attaches to a cgroup v2
// directory.
func EnsureCgroup2() (string, error) {
	if p := FindCgroup2(); p != "" {
		return p, nil
	}
	at := Cgroup2Candidates[0]
	if err := os.MkdirAll(at, 0o755); err != nil {
		return "", fmt.Errorf("create cgroup2 mount point %s: %w", at, err)
	}
	if err := unix.Mount("cgroup2", at, "cgroup2", 0, ""); err != nil {
		return "", fmt.Errorf("mount cgroup2 at %s: %w (as root: mount -t cgroup2 none %s)", at, err, at)
	}
	return at, nil
}

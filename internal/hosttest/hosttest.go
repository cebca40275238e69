// Package hosttest lets privileged tests change the host's mounts without
// touching the host: code runs in a private mount namespace of its own
// (in process, on a locked thread; or a child process under unshare), where
// bpffs can be taken away or mounted fresh. Everything mounted there
// vanishes with the namespace.
package hosttest

import (
	"errors"
	"fmt"
	"runtime"

	"golang.org/x/sys/unix"
)

// InPrivateMounts runs fn on a locked OS thread in a new mount namespace
// whose mounts do not propagate back to the host. The thread is discarded
// afterwards (never unlocked), so the namespace and everything mounted in
// it vanish with it. Goroutines fn starts run in the host's namespace.
func InPrivateMounts(fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // not unlocked: the thread ends with this goroutine
		if err := unix.Unshare(unix.CLONE_NEWNS); err != nil {
			errc <- fmt.Errorf("unshare mount namespace: %w", err)
			return
		}
		if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
			errc <- fmt.Errorf("make mounts private: %w", err)
			return
		}
		errc <- fn()
	}()
	return <-errc
}

// UnmountAll detaches every mount stacked on dir (and those below it) in
// the calling thread's mount namespace; dir is left as the directory of
// the file system underneath.
func UnmountAll(dir string) error {
	for range 64 {
		err := unix.Unmount(dir, unix.MNT_DETACH)
		if errors.Is(err, unix.EINVAL) { // not (or no longer) a mount point
			return nil
		}
		if err != nil {
			return fmt.Errorf("unmount %s: %w", dir, err)
		}
	}
	return fmt.Errorf("unmount %s: still a mount point after 64 unmounts", dir)
}

// MountBPFFS mounts a fresh bpffs instance on dir (its own, empty: pins
// made in it are not the host's).
func MountBPFFS(dir string) error {
	if err := unix.Mount("bpf", dir, "bpf", 0, "mode=0700"); err != nil {
		return fmt.Errorf("mount bpffs at %s: %w", dir, err)
	}
	return nil
}

// UnshareScript is a shell prologue for a child started with
// `unshare -m --propagation private`: it takes every mount off
// /sys/fs/bpf and fails unless it is then not a bpffs.
const UnshareScript = `while umount -l /sys/fs/bpf 2>/dev/null; do :; done
[ "$(stat -f -c %T /sys/fs/bpf)" != bpf_fs ] || { echo "/sys/fs/bpf is still a bpffs" >&2; exit 97; }
`

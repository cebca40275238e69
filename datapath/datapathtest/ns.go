package datapathtest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"syscall"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// netnsDir is where named network namespaces are bound, as by iproute2.
const netnsDir = "/run/netns"

// shareNetnsDir makes netnsDir a shared mount point, as `ip netns add`
// does. Without it, the first `ip netns add` of anyone else bind-mounts
// the directory over itself and hides the namespaces bound before, which
// can then be neither used nor deleted.
func shareNetnsDir() error {
	if err := os.MkdirAll(netnsDir, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", netnsDir, err)
	}
	err := unix.Mount("", netnsDir, "none", unix.MS_SHARED|unix.MS_REC, "")
	if errors.Is(err, unix.EINVAL) { // not a mount point yet
		if err := unix.Mount(netnsDir, netnsDir, "none", unix.MS_BIND|unix.MS_REC, ""); err != nil {
			return fmt.Errorf("bind %s: %w", netnsDir, err)
		}
		err = unix.Mount("", netnsDir, "none", unix.MS_SHARED|unix.MS_REC, "")
	}
	if err != nil {
		return fmt.Errorf("share %s: %w", netnsDir, err)
	}
	return nil
}

// newNamedNS creates /run/netns/name without leaving the caller in it.
func newNamedNS(name string) error {
	if err := shareNetnsDir(); err != nil {
		return err
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		return fmt.Errorf("get netns: %w", err)
	}
	defer orig.Close()
	h, err := netns.NewNamed(name)
	if err != nil {
		return fmt.Errorf("create netns %s: %w", name, err)
	}
	h.Close()
	if err := netns.Set(orig); err != nil {
		panic(fmt.Sprintf("restore netns: %v", err)) // the thread is unusable
	}
	return nil
}

// InNS runs fn on a locked OS thread in network namespace ns (a name
// under /run/netns). Sockets fn creates stay in ns.
func InNS(name string, fn func() error) error {
	return ns.WithNetNSPath(filepath.Join(netnsDir, name), func(ns.NetNS) error { return fn() })
}

// Run runs `ip netns exec ns args...` and returns its combined output. A
// non-empty cgroup is joined before the command starts (it must be:
// `ip netns exec` remounts /sys, hiding the cgroup tree).
func Run(ctx context.Context, ns, cgroup string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", ns}, args...)...)
	if cgroup != "" {
		f, err := os.Open(cgroup)
		if err != nil {
			return nil, fmt.Errorf("open cgroup %s: %w", cgroup, err)
		}
		defer f.Close()
		cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: int(f.Fd())}
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("run %v in %s: %w: %s", args, ns, err, out)
	}
	return out, nil
}

package datapath

import (
	"fmt"
	"os"
	"runtime"

	"github.com/vishvananda/netns"
)

// nsRunner runs functions in the node's network namespace.
type nsRunner struct {
	ns netns.NsHandle // -1: the caller's namespace
}

func openNS(path string) (nsRunner, error) {
	if path == "" {
		return nsRunner{ns: -1}, nil
	}
	h, err := netns.GetFromPath(path)
	if err != nil {
		return nsRunner{}, fmt.Errorf("open netns %s: %w", path, err)
	}
	return nsRunner{ns: h}, nil
}

func (r nsRunner) close() {
	if r.ns >= 0 {
		r.ns.Close()
	}
}

// do runs fn on a locked OS thread inside the namespace. The thread is
// thrown away (left locked) when it cannot be switched back.
func (r nsRunner) do(fn func() error) error {
	if r.ns < 0 {
		return fn()
	}
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("get current netns: %w", err)
	}
	defer orig.Close()
	if err := netns.Set(r.ns); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("enter netns: %w", err)
	}
	ferr := fn()
	if err := netns.Set(orig); err != nil {
		return fmt.Errorf("restore netns: %w", err) // the thread stays locked and dies
	}
	runtime.UnlockOSThread()
	return ferr
}

// sysctl writes value to /proc/sys/<key> in the namespace.
func (r nsRunner) sysctl(key, value string) error {
	return r.do(func() error {
		if err := os.WriteFile("/proc/sys/"+key, []byte(value), 0o644); err != nil {
			return fmt.Errorf("set sysctl %s: %w", key, err)
		}
		return nil
	})
}

// Package namedns creates and removes named network namespaces (bind
// mounts under /run/netns, as `ip netns` and container runtimes keep
// them) without leaving the calling thread in them. testenv (nodes and
// pods) and the agent's connectivity test pods use it. It depends on
// netlink and netns only.
package namedns

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Dir is where `ip netns` keeps named namespaces.
const Dir = "/run/netns"

// Path is the bind-mount path of a named namespace.
func Path(name string) string { return filepath.Join(Dir, name) }

// Create creates the named namespace with loopback up, without leaving
// the calling thread in it.
func Create(name string) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		return fmt.Errorf("get current netns: %w", err)
	}
	defer orig.Close()
	h, err := netns.NewNamed(name)
	if err != nil {
		if rerr := netns.Set(orig); rerr != nil {
			panic(fmt.Sprintf("restore netns: %v", rerr)) // the thread is unusable
		}
		return fmt.Errorf("create netns %s: %w", name, err)
	}
	defer h.Close()
	lo, lerr := netlink.LinkByName("lo")
	if lerr == nil {
		lerr = netlink.LinkSetUp(lo)
	}
	if err := netns.Set(orig); err != nil {
		panic(fmt.Sprintf("restore netns: %v", err))
	}
	if lerr != nil {
		return fmt.Errorf("set lo up in %s: %w", name, lerr)
	}
	return nil
}

// Delete removes a named namespace; a missing one is not an error, and
// a file that is not mounted (left by a mount namespace that ended) is
// removed.
func Delete(name string) error {
	err := netns.DeleteNamed(name)
	if err == nil || errors.Is(err, fs.ErrNotExist) || errors.Is(err, os.ErrInvalid) {
		return nil
	}
	if errors.Is(err, unix.EINVAL) {
		if rerr := os.Remove(Path(name)); rerr == nil || errors.Is(rerr, fs.ErrNotExist) {
			return nil
		}
	}
	if _, serr := os.Stat(Path(name)); errors.Is(serr, fs.ErrNotExist) {
		return nil
	}
	return fmt.Errorf("delete netns %s: %w", name, err)
}

// Do runs fn on a locked OS thread inside the named namespace, then
// returns the thread to the namespace it was in. Sockets fn opens stay in
// the namespace.
func Do(name string, fn func() error) error {
	h, err := netns.GetFromPath(Path(name))
	if err != nil {
		return fmt.Errorf("open netns %s: %w", name, err)
	}
	defer h.Close()
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("get current netns: %w", err)
	}
	defer orig.Close()
	if err := netns.Set(h); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("enter netns %s: %w", name, err)
	}
	ferr := fn()
	if err := netns.Set(orig); err != nil {
		// Leave the thread locked: it dies with the goroutine.
		return errors.Join(ferr, fmt.Errorf("restore netns after %s: %w", name, err))
	}
	runtime.UnlockOSThread()
	return ferr
}

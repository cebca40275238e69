package datapath

import (
	"fmt"
	"os"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// nsRunner runs functions in the node's network namespace.
type nsRunner struct {
	ns ns.NetNS // nil: the caller's namespace
}

func openNS(path string) (nsRunner, error) {
	if path == "" {
		return nsRunner{}, nil
	}
	n, err := ns.GetNS(path)
	if err != nil {
		return nsRunner{}, fmt.Errorf("open netns %s: %w", path, err)
	}
	return nsRunner{ns: n}, nil
}

func (r nsRunner) close() {
	if r.ns != nil {
		r.ns.Close()
	}
}

// do runs fn on a locked OS thread inside the namespace (ns.Do).
func (r nsRunner) do(fn func() error) error {
	if r.ns == nil {
		return fn()
	}
	return r.ns.Do(func(ns.NetNS) error { return fn() })
}

// netlink returns a netlink handle bound to the namespace.
func (r nsRunner) netlink() (*netlink.Handle, error) {
	if r.ns == nil {
		h, err := netlink.NewHandle()
		if err != nil {
			return nil, fmt.Errorf("open netlink: %w", err)
		}
		return h, nil
	}
	h, err := netlink.NewHandleAt(netns.NsHandle(r.ns.Fd()))
	if err != nil {
		return nil, fmt.Errorf("open netlink in %s: %w", r.ns.Path(), err)
	}
	return h, nil
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

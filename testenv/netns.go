package testenv

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"strings"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/weftnet/weft/internal/namedns"
)

// NetNSPath is the bind-mount path of a named namespace.
func NetNSPath(name string) string { return namedns.Path(name) }

// CreateNetNS creates a named namespace for callers that wire it
// themselves (e.g. a test running cnitool); name it weft-<env>-… so Down
// removes it.
func CreateNetNS(name string) error { return namedns.Create(name) }

// DeleteNetNS removes a named namespace; a missing one is not an error.
func DeleteNetNS(name string) error { return namedns.Delete(name) }

// listNetNS returns the named namespaces starting with prefix.
func listNetNS(prefix string) ([]string, error) {
	ents, err := os.ReadDir(namedns.Dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", namedns.Dir, err)
	}
	var out []string
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), prefix) {
			out = append(out, e.Name())
		}
	}
	return out, nil
}

// InNetNS runs fn on a locked OS thread inside the named namespace. Sockets
// fn creates stay in that namespace; processes fn starts inherit it.
func InNetNS(name string, fn func() error) error { return namedns.Do(name, fn) }

// DialIn connects to addr from inside the named namespace (the socket
// stays there): the dialer of an http.Transport or a gRPC client that must
// reach testenv's addresses from the host.
func DialIn(ctx context.Context, name, network, addr string) (c net.Conn, err error) {
	err = InNetNS(name, func() error {
		var d net.Dialer
		c, err = d.DialContext(ctx, network, addr)
		return err
	})
	return c, err
}

// handleIn opens a netlink handle in the named namespace.
func handleIn(name string) (*netlink.Handle, error) {
	h, err := netns.GetFromPath(NetNSPath(name))
	if err != nil {
		return nil, fmt.Errorf("open netns %s: %w", name, err)
	}
	defer h.Close()
	nh, err := netlink.NewHandleAt(h)
	if err != nil {
		return nil, fmt.Errorf("netlink handle in %s: %w", name, err)
	}
	return nh, nil
}

// writeSysctl sets a /proc/sys value inside the named namespace.
func writeSysctl(ns string, kv map[string]string) error {
	return InNetNS(ns, func() error {
		for k, v := range kv {
			if err := os.WriteFile("/proc/sys/"+k, []byte(v), 0o644); err != nil {
				return fmt.Errorf("set %s=%s in %s: %w", k, v, ns, err)
			}
		}
		return nil
	})
}

package httpproxy

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"syscall"
)

// ListenTransparent listens on addr, which need not be an address of the
// node (IP_TRANSPARENT and IP_FREEBIND): connections the node routes
// locally to addr reach the listener, and an accepted connection keeps
// addr as its local address, the original destination the proxy forwards
// to (Config.Destination's default). Needs CAP_NET_ADMIN.
func ListenTransparent(ctx context.Context, addr netip.AddrPort) (net.Listener, error) {
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			for _, opt := range []int{syscall.IP_TRANSPARENT, syscall.IP_FREEBIND} {
				if serr = syscall.SetsockoptInt(int(fd), syscall.SOL_IP, opt, 1); serr != nil {
					return
				}
			}
		})
		if err != nil {
			return err
		}
		return serr
	}}
	l, err := lc.Listen(ctx, "tcp4", addr.String())
	if err != nil {
		return nil, fmt.Errorf("listen transparently on %s: %w", addr, err)
	}
	return l, nil
}

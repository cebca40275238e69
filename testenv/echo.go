package testenv

import (
	"fmt"
	"io"
	"net"
	"net/netip"

	"github.com/weftnet/weft/internal/echo"
)

// ServeEcho listens on addr inside the named namespace (TCP, or UDP when
// udp is set) and echoes (package internal/echo). Each TCP connection is
// first told "from <client ip:port> at <name>\n", then echoed; each UDP
// datagram is answered with "<client ip:port>|" and the datagram. So a
// client sees which server answered and the source address it had there.
// testenv's kubelet runs one per containerPort; the connectivity test one
// per endpoint and protocol.
func ServeEcho(netns string, addr netip.AddrPort, udp bool, name string) (io.Closer, error) {
	var (
		ln net.Listener
		pc net.PacketConn
	)
	err := InNetNS(netns, func() (err error) {
		if udp {
			pc, err = net.ListenPacket("udp4", addr.String())
		} else {
			ln, err = net.Listen("tcp4", addr.String())
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("serve %s in %s: %w", addr, netns, err)
	}
	if udp {
		return echo.ServeUDP(pc), nil
	}
	return echo.ServeTCP(ln, name), nil
}
